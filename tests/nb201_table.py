"""NAS-Bench-201's published table, read from ``../shared/nb201`` beside the repository (never committed)."""

from __future__ import annotations

import itertools
from pathlib import Path

from .conftest import require
from .nnictl_helpers import REPOSITORY

NB201_CSV = REPOSITORY.parent / 'shared' / 'nb201' / 'nb201.csv'


def nb201_csv() -> Path:
    """The shared table's path; the test is skipped without it (failed where CI requires everything)."""
    require(NB201_CSV.is_file(), f"NAS-Bench-201's table is missing: put nb201.csv at {NB201_CSV} "
                                 '(the shared folder beside the repository)')
    return NB201_CSV


def fake_nb201_table(path: Path) -> Path:
    """A table of every NB201 cell in the shared table's format, with made-up accuracies (for plumbing tests)."""
    operations = ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')
    lines = ['index,arch,cifar10_test,cifar100_test,imagenet16_120_test']
    for index, ops in enumerate(itertools.product(operations, repeat=6)):
        arch = f'|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|'
        lines.append(f'{index},{arch},{50 + index % 45},{20 + index % 50},{10 + index % 30}')
    path.write_text('\n'.join(lines) + '\n')
    return path
