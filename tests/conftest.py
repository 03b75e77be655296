"""Shared fixtures: small data and quick trial settings, so the suite runs on two CPU cores."""

from __future__ import annotations

import gzip
import os
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from nni_darts_ext.strategies import ladarts

from .nnictl_helpers import running_experiment, small_experiment, trial_command, wait_until_done

warnings.filterwarnings('ignore', message='.*is found to be not a nn.Module', category=RuntimeWarning)


def share_the_cores_among_workers() -> None:
    """Under pytest-xdist, each worker and the trials it starts get their share of the cores as threads.

    Without it every worker's torch (and every trial's, and every experiment's) would use all the cores,
    and two workers on two cores would run four busy threads. ``OMP_NUM_THREADS`` carries the share to
    the subprocesses; a test that passes ``--threads`` still gets what it asks for.
    """
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ['OMP_NUM_THREADS'] = str(threads)
        torch.set_num_threads(threads)


share_the_cores_among_workers()


@pytest.fixture
def double_precision() -> Iterator[None]:
    """float64 as torch's default dtype during the test, for comparisons beyond float32's rounding;
    the previous default restored after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


QUICK = {
    'dataset': 'digits', 'space': 'darts_small', 'train_subset': 256, 'test_subset': 128,
    'batch_size': 32, 'search_epochs': 1, 'retrain_epochs': 1, 'accelerator': 'cpu',
}
"""One search epoch and one retrain epoch on a slice of digits: seconds per trial."""

CPU_VARIANT_SETTINGS = {'pcdarts': {'k': 2, 'warmup_epochs': 0}, 'scalable': {'space': 'darts_small_factorized'},
                        'pdarts': {'stages': [[3, None, 1, 0, 0.0], [4, 3, 1, 0, 0.4]]},
                        'ladarts': {'latency_samples': 8, 'latency_repeats': 3}}
"""What each variant needs at that size (as in the quick start): darts_small's 4-channel cells split in 2;
scalable's own space, darts_small with activation x conv factored; P-DARTS in two one-epoch stages;
LA-DARTS's latency predictors from 8 architectures timed 3 times each."""

COMPOSED = ('pcdarts+stabilized', 'pdarts+pcdarts', 'pcdarts+ladarts', 'pdarts+pcdarts+stabilized+ladarts')
"""Compositions of several techniques: each runs the trial's one-epoch search in the tests."""


def cpu_settings(variant: str) -> dict:
    """The CPU settings of a variant; of a composed one, its members' (but the warm-up, which P-DARTS's
    stages set themselves)."""
    members = variant.split('+')
    settings = {key: value for member in members for key, value in CPU_VARIANT_SETTINGS.get(member, {}).items()}
    if 'pdarts' in members and len(members) > 1:
        settings.pop('warmup_epochs', None)
    return settings


class CreatesFile:
    """An object that, unpickled, creates the file ``path``: what a file or a server must never get a trial to run."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


REQUIRE_SYSTEM_TOOLS = 'NNI_DARTS_EXT_REQUIRE_SYSTEM_TOOLS'
"""Set (``.ci/run`` sets it) to fail, not skip, the tests whose Debian package is missing."""


def require_system_tool(present: bool, what: str, package: str) -> None:
    """Skip the test, naming what to install, unless CI asked for every tool (then fail)."""
    require(present, f'{what} is missing: apt-get install {package}')


def require(present: bool, message: str) -> None:
    """Skip the test with ``message`` unless CI asked for everything (then fail)."""
    if present:
        return
    if os.environ.get(REQUIRE_SYSTEM_TOOLS):
        pytest.fail(f'{message} ({REQUIRE_SYSTEM_TOOLS} is set)')
    pytest.skip(message)


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """``array`` (uint8) as an idx file, the format of Fashion-MNIST's files; gzipped with ``compress``."""
    raw = b'\x00\x00\x08' + bytes([array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def fake_fashion_mnist(root: Path, compress: bool, train: int = 40, test: int = 20) -> None:
    """Fashion-MNIST's four idx files in ``root``: ``train`` and ``test`` random 28x28 images, labels 0..9 in turn.

    For tests of the reader and of configurations' plumbing, which need the format, not the real images.
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = '.gz' if compress else ''
    for prefix, count in (('train', train), ('t10k', test)):
        write_idx(root / f'{prefix}-images-idx3-ubyte{suffix}', rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), compress)
        write_idx(root / f'{prefix}-labels-idx1-ubyte{suffix}', (np.arange(count) % 10).astype(np.uint8), compress)


FAKE_FASHION_MNIST_IMAGES = 5000
"""Images in each split of :func:`fashion_mnist_copy`: experiments/search_quality.yml's ``--train-subset``
and ``--test-subset``, so its subsets are drawn as from the real files, not cut to what the copy holds."""


@pytest.fixture(scope='session')
def fashion_mnist_copy(tmp_path_factory) -> Path:
    """A generated Fashion-MNIST directory, written once a session: tests of a configuration's plumbing
    run without Debian's dataset-fashion-mnist (only test_data.py's test of the real files needs it)."""
    root = tmp_path_factory.mktemp('fashion-mnist')
    fake_fashion_mnist(root, False, FAKE_FASHION_MNIST_IMAGES, FAKE_FASHION_MNIST_IMAGES)
    return root


@pytest.fixture(autouse=True)
def latency_cache(tmp_path_factory, monkeypatch):
    """LA-DARTS measurements go to a folder of the test session, not to ~/.cache."""
    monkeypatch.setattr(ladarts, 'DEFAULT_DIRECTORY', tmp_path_factory.getbasetemp() / 'latency')


@pytest.fixture
def quick_parameters() -> dict:
    return dict(QUICK)


@pytest.fixture(scope='session')
def quickstart_run(tmp_path_factory) -> Iterator[tuple[str, int]]:
    """The quick start cut to two trials (darts and random, seed 0), run to DONE once for the session.

    Yields the experiment id and the port of its web UI and REST API; the experiment is stopped at the end.
    """
    directory = tmp_path_factory.mktemp('quickstart')
    command = trial_command({**QUICK, 'search_epochs': 2})
    config = small_experiment('quickstart', directory, ['darts', 'random'], command)
    with running_experiment(config, directory) as (experiment_id, port):
        wait_until_done(port, 600)
        yield experiment_id, port
