from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nni_darts_ext.data import FASHION_MNIST_DIR, load_dataset, read_idx, search_split
from nni_darts_ext.errors import ConfigError

from .conftest import fake_fashion_mnist, require_system_tool


def test_digits_is_the_embedded_default():
    digits = load_dataset('digits')
    assert (digits.channels, digits.image_size, digits.num_classes) == (1, 8, 10)
    assert len(digits.train) + len(digits.test) == 1797
    image, label = digits.train[0]
    assert image.dtype == torch.float32 and image.shape == (1, 8, 8) and 0 <= label < 10


def test_search_split_is_half_and_half_disjoint_and_fixed():
    train = load_dataset('digits', train_subset=101).train
    first, second = search_split(train)
    assert (len(first), len(second)) == (50, 51)
    assert not set(first.indices) & set(second.indices)
    assert search_split(train)[0].indices == first.indices


def test_subsets_are_fixed_and_sized():
    a = load_dataset('digits', train_subset=64, test_subset=32)
    b = load_dataset('digits', train_subset=64, test_subset=32)
    assert (len(a.train), len(a.test)) == (64, 32)
    assert torch.equal(a.train.images, b.train.images)


def test_test_split_is_normalised_with_training_statistics():
    digits = load_dataset('digits')
    assert digits.test.mean == digits.train.mean and digits.test.std == digits.train.std


@pytest.mark.parametrize('compress', [False, True])
def test_fashion_mnist_reads_idx_files(tmp_path, compress):
    fake_fashion_mnist(tmp_path, compress)
    fashion = load_dataset('fashion_mnist', data_dir=tmp_path, image_size=14)
    assert (len(fashion.train), len(fashion.test), fashion.image_size) == (40, 20, 14)
    assert fashion.train.labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_fashion_mnist_from_debian():
    require_system_tool(FASHION_MNIST_DIR.is_dir(), f'{FASHION_MNIST_DIR} (Fashion-MNIST)',
                        'dataset-fashion-mnist')
    fashion = load_dataset('fashion_mnist', test_subset=100)
    assert (len(fashion.train), len(fashion.test), fashion.image_size, fashion.channels) == (60000, 100, 28, 1)


def test_missing_dataset_directory_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f'data directory {tmp_path / "nope"} does not exist'):
        load_dataset('fashion_mnist', data_dir=tmp_path / 'nope')
    with pytest.raises(ConfigError, match='no train-images-idx3-ubyte'):
        load_dataset('fashion_mnist', data_dir=tmp_path)


def test_idx_reader_refuses_other_files(tmp_path):
    (tmp_path / 'x').write_bytes(b'\x00\x00\x0d\x01\x00\x00\x00\x00')
    with pytest.raises(ConfigError, match='not an idx file'):
        read_idx(tmp_path / 'x')


def test_unknown_dataset_lists_the_accepted():
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'; accepted: cifar10, cifar100, digits, fashion_mnist"):
        load_dataset('mnist')


def fake_cifar10(root: Path) -> None:
    folder = root / 'cifar-10-batches-py'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']
    for name in names:
        batch = {'data': rng.integers(0, 256, (4, 3072), dtype=np.uint8), 'labels': [0, 1, 2, 3]}
        with open(folder / name, 'wb') as f:
            pickle.dump(batch, f)
    with open(folder / 'batches.meta', 'wb') as f:
        pickle.dump({'label_names': [f'class{i}' for i in range(10)]}, f)


def test_cifar10_reads_torchvisions_on_disk_format(tmp_path, monkeypatch):
    import torchvision.datasets.cifar
    fake_cifar10(tmp_path)
    # the fake files cannot match torchvision's checksums; everything else is torchvision's reader
    monkeypatch.setattr(torchvision.datasets.cifar, 'check_integrity', lambda path, md5=None: Path(path).is_file())
    cifar = load_dataset('cifar10', data_dir=tmp_path)
    assert (len(cifar.train), len(cifar.test), cifar.channels, cifar.image_size, cifar.num_classes) == (20, 4, 3, 32, 10)
    assert cifar.train.augment and not cifar.test.augment
    assert cifar.train[0][0].shape == (3, 32, 32)


def test_cifar_without_network_says_where_to_put_the_files(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR100

    def no_network(self):
        raise OSError('network unreachable')
    monkeypatch.setattr(CIFAR100, 'download', no_network)
    with pytest.raises(ConfigError, match=f'CIFAR100: not in {tmp_path} and the download failed'):
        load_dataset('cifar100', data_dir=tmp_path)


def test_grey_images_repeat_to_three_channels_for_hub_spaces():
    digits = load_dataset('digits', train_subset=16).with_channels(3)
    image, _ = digits.train[0]
    assert image.shape == (3, 8, 8) and torch.equal(image[0], image[2])
    with pytest.raises(ConfigError, match='needs 1-channel images; digits has 3'):
        digits.with_channels(1)
