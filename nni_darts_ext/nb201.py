"""NAS-Bench-201's published accuracies as the ground truth of a cell found on ``nni:NasBench201``.

NNI's hub ``NasBench201`` is NAS-Bench-201's cell: its choice ``cell/I_J`` is the edge from node
``I`` into node ``J`` (NB201's ``op~I`` in node ``J``'s group of the architecture string), and its
``conv_1x1`` / ``conv_3x3`` are NB201's ``nor_conv_1x1`` / ``nor_conv_3x3``.

A table is a CSV with NB201's ``arch`` string and one ``DATASET_test`` column per dataset (test
accuracy in percent), one row per cell, as NATS-Bench's topology results give it; any other columns
are ignored. A cell's *percentile* is the share of the table's cells that score below it, ties
counting half (the convention of :mod:`nni_darts_ext.reference_sample`).
"""

from __future__ import annotations

import bisect
import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

NB201_SPACE = 'nni:NasBench201'
NODES = 4
OPERATIONS = {'none': 'none', 'skip_connect': 'skip_connect', 'conv_1x1': 'nor_conv_1x1',
              'conv_3x3': 'nor_conv_3x3', 'avg_pool_3x3': 'avg_pool_3x3'}
"""NNI's operation names -> NB201's."""

TEST_SUFFIX = '_test'


def edge_choice(source: int, node: int) -> str:
    """The label of NNI's choice for the edge ``source -> node``."""
    return f'cell/{source}_{node}'


def nb201_string(architecture: Mapping[str, Any]) -> str:
    """NB201's ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` of an architecture of ``nni:NasBench201``."""
    groups = []
    for node in range(1, NODES):
        operations = []
        for source in range(node):
            label = edge_choice(source, node)
            if architecture.get(label) not in OPERATIONS:
                raise ConfigError(f'the architecture is not a cell of {NB201_SPACE}: {label} is '
                                  f'{architecture.get(label)!r}, not one of {", ".join(OPERATIONS)}')
            operations.append(f'{OPERATIONS[architecture[label]]}~{source}')
        groups.append('|' + '|'.join(operations) + '|')
    return '+'.join(groups)


def nni_architecture(cell: str) -> dict[str, str]:
    """The architecture of ``nni:NasBench201`` that NB201's string ``cell`` names (the inverse of
    :func:`nb201_string`); one :class:`ConfigError` line for a string that is not one of its cells."""
    names = {nb201: nni for nni, nb201 in OPERATIONS.items()}
    architecture = {}
    for node, group in enumerate(cell.split('+'), start=1):
        for edge in group.strip('|').split('|'):
            operation, _, source = edge.partition('~')
            architecture[f'cell/{source}_{node}'] = names.get(operation, operation)
    try:
        read_back = nb201_string(architecture)
    except ConfigError:
        read_back = None
    if read_back != cell:
        raise ConfigError(f'{cell!r} is not an NB201 cell string; accepted: |op~0|+|op~0|op~1|+|op~0|op~1|op~2| '
                          f'with each op one of {", ".join(OPERATIONS.values())}')
    return architecture


@dataclass(frozen=True)
class GroundTruth:
    """One NB201 table: each cell's test accuracy per dataset, and every dataset's sorted accuracies."""
    path: Path
    accuracy: dict[str, dict[str, float]]
    sorted_accuracies: dict[str, list[float]]

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self.sorted_accuracies)

    def percentile(self, dataset: str, value: float) -> float:
        """The share of the table's cells below ``value`` on ``dataset``, ties counting half, in percent."""
        ranked = self.sorted_accuracies[dataset]
        below, up_to = bisect.bisect_left(ranked, value), bisect.bisect_right(ranked, value)
        return 100 * (below + (up_to - below) / 2) / len(ranked)

    def score(self, architecture: Mapping[str, Any]) -> dict[str, float]:
        """``nb201_DATASET`` (the cell's accuracy) and ``nb201_DATASET_percentile`` for every dataset."""
        cell = nb201_string(architecture)
        if cell not in self.accuracy:
            raise ConfigError(f'nb201_table {self.path} lacks the cell {cell}: a table holds every cell of the space')
        scores: dict[str, float] = {}
        for dataset, value in self.accuracy[cell].items():
            scores[f'nb201_{dataset}'] = round(value, 4)
            scores[f'nb201_{dataset}_percentile'] = round(self.percentile(dataset, value), 2)
        return scores


def load_table(path: str | Path) -> GroundTruth:
    """Read and check an NB201 table (see the module); one :class:`ConfigError` line for a missing,
    unreadable or malformed file. Cached per path and modification time."""
    path = Path(path).expanduser()
    try:
        modified = path.stat().st_mtime_ns
    except OSError as err:
        raise ConfigError(f'nb201_table {path} cannot be read ({err.strerror}); give the path of an NB201 CSV '
                          'with an arch column and DATASET_test columns') from None
    return _load(path, modified)


@lru_cache(maxsize=4)
def _load(path: Path, modified_ns: int) -> GroundTruth:
    try:
        with path.open(newline='') as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f'nb201_table {path} is not a readable CSV ({err})') from None
    columns = list(rows[0]) if rows else []
    datasets = [c[:-len(TEST_SUFFIX)] for c in columns if c and c.endswith(TEST_SUFFIX)]
    if 'arch' not in columns or not datasets:
        raise ConfigError(f'nb201_table {path} needs an arch column and at least one DATASET_test column; '
                          f'found {", ".join(str(c) for c in columns) or "no rows"}')
    accuracy: dict[str, dict[str, float]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            values = {d: float(row[d + TEST_SUFFIX]) for d in datasets}
        except (TypeError, ValueError):
            values = {}
        if not values or not all(math.isfinite(v) and 0 <= v <= 100 for v in values.values()):
            raise ConfigError(f'nb201_table {path}, line {line}: every DATASET_test column must be an accuracy '
                              'in percent, from 0 to 100')
        accuracy[row['arch']] = values
    return GroundTruth(path, accuracy, {d: sorted(v[d] for v in accuracy.values()) for d in datasets})
