"""Image-classification datasets, held in memory as uint8 tensors, and the search split.

``digits``         scikit-learn's 8x8 handwritten digits (ships with scikit-learn): the default.
                   It has no test split; a fixed, stratified quarter is held out as the test set.
``fashion_mnist``  the idx files of Fashion-MNIST (Debian's ``dataset-fashion-mnist`` puts them in
                   /usr/share/datasets/fashion-mnist), plain or gzipped.
``cifar10``,       torchvision's CIFAR, downloaded into ``data_dir`` on first use.
``cifar100``

Subsets are drawn with a fixed seed, and the search split is fixed too, so every trial of an
experiment sees the same images whatever its own seed.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset, random_split
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.transforms import v2

from .errors import ConfigError, check_directory, unknown_value

DATA_SEED = 0
"""Seed of subsets and of the search split: the same data for every trial."""

FASHION_MNIST_DIR = Path('/usr/share/datasets/fashion-mnist')
FASHION_MNIST_CLASSES = 10
DEFAULT_DATA_DIR = Path.home() / '.cache' / 'nni-darts-ext'


class Cutout:
    """DARTS's cutout (DeVries & Taylor, 2017): a ``length`` x ``length`` square of the
    normalized image, at a uniformly drawn centre, set to zero (the mean); clipped at the border."""

    def __init__(self, length: int):
        self.length = length

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        top = int(torch.randint(height, ())) - self.length // 2
        left = int(torch.randint(width, ())) - self.length // 2
        image = image.clone()
        image[..., max(top, 0):max(top + self.length, 0), max(left, 0):max(left + self.length, 0)] = 0
        return image


class ImageTensorDataset(Dataset):
    """Normalised float images from a uint8 ``(N, C, H, W)`` tensor, optionally augmented
    with the CIFAR recipe (padded random crop, horizontal flip) and with :class:`Cutout` of
    ``cutout`` pixels (0: none). The per-channel mean and standard deviation are the given ones
    (the training split's) or this split's own."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, augment: bool = False,
                 statistics: tuple[list[float], list[float]] | None = None, cutout: int = 0):
        self.images = images
        self.labels = labels
        self.augment = augment
        self.cutout = cutout
        floats = images.float() / 255
        self.mean, self.std = statistics or (floats.mean(dim=(0, 2, 3)).tolist(),
                                             floats.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
        steps: list[Callable] = []
        if augment:
            size = images.shape[-1]
            steps += [v2.RandomCrop(size, padding=size // 8), v2.RandomHorizontalFlip()]
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)]
        if cutout:
            steps.append(Cutout(cutout))
        self.transform = v2.Compose(steps)

    def with_cutout(self, length: int) -> ImageTensorDataset:
        """The same images and statistics with :class:`Cutout` of ``length`` pixels (0: none)."""
        return ImageTensorDataset(self.images, self.labels, self.augment, (self.mean, self.std), length)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), int(self.labels[index])


@dataclass(frozen=True)
class ImageData:
    """A dataset's train and test splits and the shape facts a model space needs."""
    name: str
    train: ImageTensorDataset
    test: ImageTensorDataset
    num_classes: int

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]

    def with_channels(self, channels: int) -> ImageData:
        """The same data with grey images repeated to ``channels`` channels (for 3-channel spaces)."""
        if channels == self.channels:
            return self
        if self.channels != 1:
            raise ConfigError(f'the model space needs {channels}-channel images; {self.name} has {self.channels}')
        statistics = (self.train.mean * channels, self.train.std * channels)
        train, test = (ImageTensorDataset(split.images.expand(-1, channels, -1, -1), split.labels,
                                          split.augment, statistics) for split in (self.train, self.test))
        return ImageData(self.name, train, test, self.num_classes)


def _digits(data_dir: Path | None) -> tuple[torch.Tensor, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = torch.from_numpy(digits.images * 255 / 16).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(digits.target)
    train_x, test_x, train_y, test_y = train_test_split(images, labels, test_size=0.25,
                                                        random_state=DATA_SEED, stratify=labels)
    return train_x, train_y, test_x, test_y


def read_idx(path: Path) -> torch.Tensor:
    """A uint8 array from an idx file (the MNIST format), plain or gzipped.

    Raises
    ------
    ConfigError
        For a file that is not one, or a truncated one (its header promises more bytes than it holds).
    """
    raw = path.read_bytes()
    if path.suffix == '.gz':
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise ConfigError(f'{path}: truncated or damaged gzip file ({err}); download it again') from None
    if len(raw) < 4 or raw[:3] != b'\x00\x00\x08':
        raise ConfigError(f'{path}: not an idx file of unsigned bytes (the MNIST format)')
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError(f'{path}: truncated idx file: {len(raw)} bytes, shorter than its header; download it again')
    shape = struct.unpack(f'>{ndim}I', raw[4:header])
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise ConfigError(f'{path}: truncated or damaged idx file: {len(raw)} bytes where its shape '
                          f'{"x".join(map(str, shape))} needs {expected}; download it again')
    if not math.prod(shape):  # torch.frombuffer refuses an empty buffer; the caller refuses an empty file
        return torch.empty(shape, dtype=torch.uint8)
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).view(*shape)


def _fashion_mnist(data_dir: Path | None) -> tuple[torch.Tensor, ...]:
    root = data_dir or FASHION_MNIST_DIR
    if not root.is_dir():
        raise ConfigError(f'fashion_mnist: data directory {root} does not exist; install Debian\'s '
                          f'dataset-fashion-mnist (puts the idx files in {FASHION_MNIST_DIR}) or set data_dir')
    arrays = []
    for stem in ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'):
        found = [root / (stem + suffix) for suffix in ('', '.gz') if (root / (stem + suffix)).is_file()]
        if not found:
            raise ConfigError(f'fashion_mnist: no {stem}[.gz] in {root}; install Debian\'s dataset-fashion-mnist '
                              f'(puts the files in {FASHION_MNIST_DIR}) or set data_dir to a directory holding them')
        array = read_idx(found[0])
        _check_fashion_mnist_array(found[0], array, labels='labels' in stem)
        arrays.append(array)
    train_x, train_y, test_x, test_y = arrays
    for split, images, labels in (('train', train_x, train_y), ('t10k', test_x, test_y)):
        if len(images) != len(labels):
            raise ConfigError(f'fashion_mnist: {root} holds {len(images)} {split} images but {len(labels)} labels; '
                              'download the files again')
    return train_x.unsqueeze(1), train_y.long(), test_x.unsqueeze(1), test_y.long()


def _check_fashion_mnist_array(path: Path, array: torch.Tensor, labels: bool) -> None:
    """Refuse a whole idx file that still cannot be Fashion-MNIST's: no items, or a label outside its
    classes (a cross-entropy over 10 classes would fail mid-search on it, or train on garbage)."""
    if len(array) == 0:
        raise ConfigError(f'{path}: holds no {"labels" if labels else "images"}; download it again')
    if labels and int(array.max()) >= FASHION_MNIST_CLASSES:
        raise ConfigError(f'{path}: holds label {int(array.max())}; Fashion-MNIST\'s labels are 0 to '
                          f'{FASHION_MNIST_CLASSES - 1}: download it again')


def _cifar(dataset_class) -> Callable[[Path | None], tuple[torch.Tensor, ...]]:
    def load(data_dir: Path | None) -> tuple[torch.Tensor, ...]:
        root = data_dir or DEFAULT_DATA_DIR
        if not root.is_dir():  # the download creates it
            check_directory('data_dir', root)
        root.mkdir(parents=True, exist_ok=True)
        splits = []
        for train in (True, False):
            try:
                dataset = dataset_class(str(root), train=train, download=True)
            except (OSError, RuntimeError) as err:
                raise ConfigError(f'{dataset_class.__name__}: not in {root} and the download failed ({err}); '
                                  f'put the extracted python-version archive there or set data_dir') from None
            splits += [torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(dataset.targets)]
        return tuple(splits)
    return load


# name -> (loader, number of classes, augment the training split)
DATASETS = {
    'digits': (_digits, 10, False),
    'fashion_mnist': (_fashion_mnist, FASHION_MNIST_CLASSES, False),
    'cifar10': (_cifar(CIFAR10), 10, True),
    'cifar100': (_cifar(CIFAR100), 100, True),
}


def load_dataset(name: str, data_dir: str | Path | None = None, train_subset: int | None = None,
                 test_subset: int | None = None, image_size: int | None = None) -> ImageData:
    """Load ``name``; optionally a fixed random subset of each split, resized to ``image_size``."""
    if name not in DATASETS:
        raise unknown_value('dataset', name, DATASETS)
    if data_dir:  # read, or downloaded into: a file there is refused here, a missing folder by the loader
        check_directory('data_dir', data_dir, written=False)
    directory = Path(data_dir).expanduser() if data_dir else None
    loader, num_classes, augment = DATASETS[name]
    train_x, train_y, test_x, test_y = loader(directory)
    train_x, train_y = _subset(train_x, train_y, train_subset, 'train_subset')
    test_x, test_y = _subset(test_x, test_y, test_subset, 'test_subset')
    if image_size is not None:
        train_x, test_x = _resize(train_x, image_size), _resize(test_x, image_size)
    train = ImageTensorDataset(train_x, train_y, augment)
    return ImageData(name, train, ImageTensorDataset(test_x, test_y, statistics=(train.mean, train.std)), num_classes)


def search_split(train: Dataset, size: int | None = None) -> tuple[Subset, Subset]:
    """The DARTS split: half of the training set (or of a fixed random ``size`` of its images)
    trains the weights, the other half the architecture."""
    size = min(size or len(train), len(train))
    half = size // 2
    generator = torch.Generator().manual_seed(DATA_SEED)
    first, second, _ = random_split(train, [half, size - half, len(train) - size], generator=generator)
    return first, second


def _subset(images: torch.Tensor, labels: torch.Tensor, size: int | None, key: str):
    if size is None or size >= len(labels):
        return images, labels
    if size < 2:
        raise ConfigError(f'{key} must be at least 2, got {size}')
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(DATA_SEED))[:size]
    return images[order], labels[order]


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if size == images.shape[-1]:
        return images
    resized = F.interpolate(images.float(), size=(size, size), mode='bilinear', antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)
