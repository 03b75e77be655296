"""NAS-Bench-201's published table, read from ``../shared/nb201`` beside the repository (never committed)."""

from __future__ import annotations

from pathlib import Path

from .conftest import require
from .nnictl_helpers import REPOSITORY

NB201_CSV = REPOSITORY.parent / 'shared' / 'nb201' / 'nb201.csv'


def nb201_csv() -> Path:
    """The shared table's path; the test is skipped without it (failed where CI requires everything)."""
    require(NB201_CSV.is_file(), f"NAS-Bench-201's table is missing: put nb201.csv at {NB201_CSV} "
                                 '(the shared folder beside the repository)')
    return NB201_CSV
