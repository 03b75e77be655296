"""The latency of every NAS-Bench-201 cell on this machine, and the true accuracy-latency front.

Each cell of the NB201 table is built as the network a found cell is deployed as: NNI's hub
``NasBench201`` at NB201's own evaluation size (16 channels, 5 cells per stage, 10 classes, one
3x32x32 image), the network the table's accuracies belong to. The package's latency code times it
(:func:`nni_darts_ext.latency.measurement.measure`: batch 1, 1 thread, warm-up rounds, the median of
the timed rounds), a chunk of cells at a time in interleaved rounds, so that a burst of load slows a
round of every cell in the chunk rather than one cell. One fixed reference cell is timed in every
chunk: its spread over the chunks is the drift the chunks cannot cancel, so each cell's latency is
read scaled by its chunk's (:func:`chunk_scaled`). NNI's NB201 network computes every edge, so a
cell's operation counts set its work: every cell of the table is given the median latency of the
timed cells with its counts (:func:`by_operation_counts`), which averages one timing's noise out
over its peers and covers the cells not timed themselves. The file keeps each chunk's cells
beside its reference latency, and each cell's latency as timed. It names cells by their choices
in NNI's space (``cell/0_1=conv_3x3 ...``), not by NB201's strings: no part of NB201's table is
written.

The order: a cell of each operation count no timed cell has, then the first cell of each
isomorphism class (the table's ``unique_str``; without that column every cell is its own class)
in a seeded random order, then the other cells, also shuffled. The results file is rewritten
after every chunk and a rerun on the same machine times only the cells it lacks (``--limit`` stops
after that many cells); another machine's latencies are not mixed in. ``--repeatability N`` times
N timed cells once more, in other chunks, and reports how the second pass agrees with the first
and with the operation counts' medians. The figure: every cell's NB201 CIFAR-10 accuracy against
its latency, and the Pareto front (no faster cell is as accurate).

    python benchmarks/nb201_latency.py --repeatability 100 --output benchmarks/results/nb201_latency_cpu.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from nni_darts_ext import trial  # noqa: E402
from nni_darts_ext.nb201_summary import architecture_of  # noqa: E402
from nni_darts_ext.latency.measurement import TimingSettings, measure  # noqa: E402
from nni_darts_ext.latency.profile import deployed  # noqa: E402
from nni_darts_ext import architecture  # noqa: E402
from nni_darts_ext.nb201 import NB201_SPACE, load_table, nb201_string, nni_architecture  # noqa: E402
from nni_darts_ext.spaces import Size  # noqa: E402
from nni_darts_ext.spaces.hub import hub_space  # noqa: E402

from figures import save_figure  # noqa: E402
from front import pareto_front  # noqa: E402
from machine import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_CELL = '|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|'
"""Timed in every chunk: one of each operation, so it moves as the cells do."""


@lru_cache(maxsize=None)  # the file is written after every chunk, with every cell timed so far
def stored(cell: str) -> str:
    """How the results file names an NB201 cell: its architecture of ``nni:NasBench201``, on one line."""
    return architecture.describe(nni_architecture(cell))


def unstored(name: str) -> str:
    """The NB201 string of a cell as the results file names it."""
    return nb201_string(architecture_of({'arch': name}))


def chunk_scaled(latency: dict[str, float], chunks: list[list[str]], references: list[float],
                 typical: float) -> dict[str, float]:
    """Each chunk's cells' latencies times ``typical`` over the reference cell's latency in that chunk:
    what they would have taken in a chunk that ran at the reference's ``typical`` speed."""
    return {cell: latency[cell] * typical / reference for chunk, reference in zip(chunks, references, strict=True)
            for cell in chunk}


def load_latencies(path: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """A results file's network and its cells' latencies (ms) scaled to the reference cell's median
    over the chunks, keyed by NB201's strings."""
    written = json.loads(path.read_text())
    chunks = [[unstored(name) for name in chunk] for chunk in written['chunks']]
    latency = {unstored(name): ms for name, ms in written['latency_ms'].items()}
    return written['network'], chunk_scaled(latency, chunks, written['reference_ms'],
                                            statistics.median(written['reference_ms']))


def operation_counts(cell: str) -> tuple[str, ...]:
    """A cell's operations, sorted. NNI's NB201 network computes every edge, the zero operation's
    too, on tensors of one shape, so these counts alone set the work a cell does."""
    return tuple(sorted(edge.split('~')[0] for node in cell.strip('|').split('|+|') for edge in node.split('|')))


def by_operation_counts(timed: dict[str, float], cells: Iterable[str]) -> dict[str, float]:
    """Each of ``cells`` whose operation counts a timed cell has: the median latency of the timed
    cells with those counts (the timing noise of one cell averaged out over its peers)."""
    groups: dict[tuple[str, ...], list[float]] = {}
    for cell, ms in timed.items():
        groups.setdefault(operation_counts(cell), []).append(ms)
    medians = {counts: statistics.median(values) for counts, values in groups.items()}
    return {cell: medians[counts] for cell in cells if (counts := operation_counts(cell)) in medians}


def uncovered(cells: Iterable[str], timed: Iterable[str]) -> list[str]:
    """The first cell of each operation count that no ``timed`` cell has."""
    covered = {operation_counts(cell) for cell in timed}
    first: dict[tuple[str, ...], str] = {}
    for cell in cells:
        if (counts := operation_counts(cell)) not in covered:
            first.setdefault(counts, cell)
    return list(first.values())


def read_cells(path: Path) -> tuple[dict[str, float], dict[str, str]]:
    """Each cell's NB201 CIFAR-10 test accuracy, and its isomorphism class (itself without ``unique_str``)."""
    table = load_table(path)  # checked: one error line for a missing or malformed table
    with path.open(newline='') as stream:
        classes = {row['arch']: row.get('unique_str') or row['arch'] for row in csv.DictReader(stream)}
    return {cell: values['cifar10'] for cell, values in table.accuracy.items()}, classes


def timing_order(classes: dict[str, str], seed: int) -> list[str]:
    """The first cell of every class in a seeded random order, then the other cells, shuffled alike."""
    first: dict[str, str] = {}
    for cell, kind in classes.items():
        first.setdefault(kind, cell)
    leading = list(first.values())
    chosen = set(leading)
    rest = [cell for cell in classes if cell not in chosen]
    generator = random.Random(seed)
    generator.shuffle(leading)
    generator.shuffle(rest)
    return leading + rest


def time_cells(cells: list[str], space: Any, settings: TimingSettings) -> tuple[list[float], float]:
    """The cells' latencies (ms), timed together with the reference cell, and the reference's."""
    networks = [deployed(space, nni_architecture(cell)) for cell in [*cells, REFERENCE_CELL]]
    timed = measure(networks, (3, 32, 32), settings)
    return [t.total_ms for t in timed[:-1]], timed[-1].total_ms


def plot(accuracy: dict[str, float], latency: dict[str, float], path: Path) -> None:
    points = [(latency[cell], accuracy[cell], cell) for cell in latency]
    front = pareto_front(points)
    figure, axes = plt.subplots(figsize=(8, 5))
    axes.scatter([p[0] for p in points], [p[1] for p in points], s=3, alpha=0.3, color='C0',
                 label=f'{len(points)} cells')
    axes.step([p[0] for p in front], [p[1] for p in front], where='post', color='C3', marker='o', markersize=3,
              label=f'Pareto front ({len(front)} cells)')
    axes.set_ylim(max(0.0, min(p[1] for p in points) - 2), 95)
    axes.set_xlabel('latency (ms, batch 1, 1 thread, 3x32x32, C=16, N=5)')
    axes.set_ylabel('NB201 CIFAR-10 test accuracy (%)')
    axes.legend(loc='lower right', fontsize=8)
    save_figure(figure, path, axes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--table', type=Path, default=ROOT.parent / 'shared' / 'nb201' / 'nb201.csv',
                        help="NB201's table (default: the shared folder beside the repository)")
    parser.add_argument('--width', type=int, default=16, help="the deployed network's channels (NB201's: 16)")
    parser.add_argument('--cells', type=int, default=5, help="cells per stage (NB201's: 5)")
    parser.add_argument('--chunk', type=int, default=50, help='cells timed together in interleaved rounds')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--seed', type=int, default=0, help='the order in which cells are timed')
    parser.add_argument('--limit', type=int, help='stop after this many timed cells (the file keeps them)')
    parser.add_argument('--repeatability', type=int, default=0, metavar='N',
                        help='time N timed cells again and report the rank correlation of the two passes')
    parser.add_argument('--output', type=Path, default=ROOT / 'benchmarks' / 'results' / 'nb201_latency_cpu.json')
    arguments = parser.parse_args()
    trial.configure_output()
    accuracy, classes = read_cells(arguments.table)
    settings = TimingSettings(warmup=arguments.warmup, repeats=arguments.repeats, threads=1)
    space = hub_space(NB201_SPACE, 10, 32).build(Size(arguments.width, arguments.cells), True)
    network = {'space': NB201_SPACE, 'width': arguments.width, 'cells': arguments.cells, 'input': [1, 3, 32, 32],
               'warmup': settings.warmup, 'repeats': settings.repeats, 'threads': 1, 'chunk': arguments.chunk}
    written = json.loads(arguments.output.read_text()) if arguments.output.is_file() else {}
    if written and written['network'] != network:
        raise SystemExit(f"error: {arguments.output} holds latencies of another network or timing "
                         f"({written['network']}); accepted: the same settings, or another --output")
    machine = f'{cpu_name()}, 1 thread, torch {torch.__version__}'
    if written and written['machine'] != machine:
        raise SystemExit(f"error: {arguments.output} was timed on {written['machine']}, this is {machine}; accepted: "
                         'go on with it on the same machine, or time a table of this one with another --output')
    latency = {unstored(name): ms for name, ms in written.get('latency_ms', {}).items()}
    references: list[float] = written.get('reference_ms', [])
    chunks = [[unstored(name) for name in chunk] for chunk in written.get('chunks', [])]
    repeated = {unstored(name): ms for name, ms in written.get('repeated_ms', {}).items()}
    repeated_references: list[float] = written.get('repeated_reference_ms', [])
    repeated_chunks = [[unstored(name) for name in chunk] for chunk in written.get('repeated_chunks', [])]

    def save() -> None:
        arguments.output.write_text(json.dumps({
            'machine': machine, 'network': network, 'seed': arguments.seed,
            'timed': len(latency), 'of': len(accuracy), 'reference_cell': stored(REFERENCE_CELL),
            'reference_ms': references, 'chunks': [[stored(cell) for cell in chunk] for chunk in chunks],
            'latency_ms': {stored(cell): ms for cell, ms in latency.items()},
            'repeated_reference_ms': repeated_references,
            'repeated_chunks': [[stored(cell) for cell in chunk] for chunk in repeated_chunks],
            'repeated_ms': {stored(cell): ms for cell, ms in repeated.items()}}, indent=1))

    def time_in_chunks(cells: list[str], into: dict[str, float], into_chunks: list[list[str]],
                       into_references: list[float]) -> None:
        for start in range(0, len(cells), arguments.chunk):
            chunk = cells[start:start + arguments.chunk]
            times, reference = time_cells(chunk, space, settings)
            into.update((cell, round(ms, 4)) for cell, ms in zip(chunk, times))
            into_references.append(round(reference, 4))
            into_chunks.append(chunk)
            save()
            print(f'{len(latency)} of {len(accuracy)} cells timed; reference cell {reference:.2f} ms', flush=True)

    order = uncovered(accuracy, latency) + timing_order(classes, arguments.seed)
    missing = [cell for cell in order if cell not in latency]
    if arguments.limit is not None:
        missing = missing[:max(0, arguments.limit - len(latency))]
    time_in_chunks(missing, latency, chunks, references)
    # the first cells timed, timed again in another order, so that each chunk of the second pass
    # groups other cells than the first pass did
    first_timed = [cell for chunk in chunks for cell in chunk][:arguments.repeatability]
    again = [cell for cell in first_timed if cell not in repeated]
    random.Random(arguments.seed + 1).shuffle(again)
    time_in_chunks(again, repeated, repeated_chunks, repeated_references)
    save()
    typical = statistics.median(references)
    scaled = chunk_scaled(latency, chunks, references, typical)
    every = by_operation_counts(scaled, accuracy)
    plot(accuracy, every, arguments.output.with_suffix('.png'))
    front = pareto_front([(every[cell], accuracy[cell], cell) for cell in every])
    print(f'{len(scaled)} of {len(accuracy)} cells timed on {machine}, chunk-scaled: {min(scaled.values()):.2f} to '
          f'{max(scaled.values()):.2f} ms (median {statistics.median(scaled.values()):.2f}); reference cell '
          f'{min(references):.2f} to {max(references):.2f} ms over {len(references)} chunks; '
          f'{len(every)} cells by their operation counts')
    for operation in sorted({op for cell in every for op in operation_counts(cell)}):
        uniform = '|{0}~0|+|{0}~0|{0}~1|+|{0}~0|{0}~1|{0}~2|'.format(operation)
        if uniform in every:
            print(f'  {operation} on all six edges: {every[uniform]:.2f} ms')
    counted = by_operation_counts(scaled, scaled)
    print(f'a timed cell differs from the median of the timed cells with its operation counts by a median '
          f'{100 * statistics.median(abs(scaled[c] - counted[c]) / counted[c] for c in scaled):.1f} %')
    if repeated:
        cells = sorted(repeated)
        repeated_scaled = chunk_scaled(repeated, repeated_chunks, repeated_references, typical)
        for name, first, second in (('as timed', latency, repeated), ('chunk-scaled', scaled, repeated_scaled),
                                    ('by operation counts', every, repeated_scaled)):
            firsts, seconds = [first[c] for c in cells], [second[c] for c in cells]
            difference = statistics.median(abs(a - b) / a for a, b in zip(firsts, seconds))
            print(f'repeatability {name}: Spearman {spearmanr(firsts, seconds).statistic:.3f}, median difference '
                  f'{100 * difference:.1f} % over {len(cells)} cells timed twice')
    print('the front (latency ms, CIFAR-10 %, cell):')
    for point in front:
        print(f'  {point[0]:7.2f}  {point[1]:6.2f}  {point[2]}')


if __name__ == '__main__':
    main()
