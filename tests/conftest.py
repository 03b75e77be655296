"""Shared fixtures: small data and quick trial settings, so the suite runs on two CPU cores."""

from __future__ import annotations

import warnings

import pytest

warnings.filterwarnings('ignore', message='.*is found to be not a nn.Module', category=RuntimeWarning)

QUICK = {
    'dataset': 'digits', 'space': 'darts_small', 'train_subset': 256, 'test_subset': 128,
    'batch_size': 32, 'search_epochs': 1, 'retrain_epochs': 1, 'accelerator': 'cpu',
}
"""One search epoch and one retrain epoch on a slice of digits: seconds per trial."""

CPU_VARIANT_SETTINGS = {'pcdarts': {'k': 2, 'warmup_epochs': 0}, 'scalable': {'space': 'darts_small_factorized'}}
"""What each variant needs at that size (as in the quick start): darts_small's 4-channel cells split in 2;
scalable's own space, darts_small with activation x conv factored."""


@pytest.fixture
def quick_parameters() -> dict:
    return dict(QUICK)
