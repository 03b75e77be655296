"""Two sets of searches on NAS-Bench-201's ground truth, paired by seed.

Each side is ``FILE:VARIANT`` or ``FILE:VARIANT:BUDGET``: the results of ``nb201_quality.py``
(its ``results``) or of ``collapse.py`` (its ``runs``, at ``BUDGET``, 1 unless given). Every found
cell is scored by NB201's CIFAR-10 accuracy (``--table``); the seeds both sides hold are paired.
Prints each seed's pair, both medians, the median difference and a two-sided Wilcoxon
signed-rank test of the differences (and writes them as JSON with ``--output``).

    python benchmarks/paired.py benchmarks/results/ground_truth_data4x_cpu.json:darts benchmarks/results/ground_truth_cpu.json:darts
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from scipy.stats import wilcoxon

from nni_darts_ext.nb201 import GroundTruth, load_table
from nni_darts_ext.nb201_summary import architecture_of

ROOT = Path(__file__).resolve().parent.parent


def accuracies(side: str, table: GroundTruth) -> dict[int, float]:
    """Seed -> the found cell's NB201 CIFAR-10 accuracy, for one ``FILE:VARIANT[:BUDGET]``."""
    path, variant, *budget = side.split(':')
    written = json.loads(Path(path).read_text())
    if 'results' in written:
        chosen = [r for r in written['results'] if r['variant'] == variant]
    else:
        wanted = int(budget[0]) if budget else 1
        chosen = [r for r in written['runs'] if (r['variant'], r['budget']) == (variant, wanted)]
    if not chosen:
        raise SystemExit(f'error: {side} names no searches; accepted: FILE:VARIANT[:BUDGET] of a variant '
                         'the file holds')
    return {r['seed']: table.score(architecture_of(r))['nb201_cifar10'] for r in chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('first', help='FILE:VARIANT[:BUDGET]')
    parser.add_argument('second', help='FILE:VARIANT[:BUDGET]')
    parser.add_argument('--table', type=Path, default=ROOT.parent / 'shared' / 'nb201' / 'nb201.csv',
                        help="NB201's table (default: the shared folder beside the repository)")
    parser.add_argument('--output', type=Path)
    arguments = parser.parse_args()
    table = load_table(arguments.table)
    first, second = accuracies(arguments.first, table), accuracies(arguments.second, table)
    seeds = sorted(set(first) & set(second))
    if not seeds:
        raise SystemExit('error: the two sides share no seed; accepted: searches of the same seeds')
    print('| seed | first | second | difference |')
    print('|---:|---:|---:|---:|')
    for seed in seeds:
        print(f'| {seed} | {first[seed]:.2f} | {second[seed]:.2f} | {first[seed] - second[seed]:+.2f} |')
    differences = [first[s] - second[s] for s in seeds]
    p = float(wilcoxon(differences).pvalue) if any(differences) else 1.0
    print(f'{len(seeds)} seeds: medians {statistics.median(first[s] for s in seeds):.2f} and '
          f'{statistics.median(second[s] for s in seeds):.2f}, median difference '
          f'{statistics.median(differences):+.2f}, two-sided Wilcoxon p = {p:.3g}')
    if arguments.output:
        arguments.output.write_text(json.dumps({
            'first': arguments.first, 'second': arguments.second, 'seeds': seeds,
            'first_cifar10': [first[s] for s in seeds], 'second_cifar10': [second[s] for s in seeds],
            'median_difference': statistics.median(differences), 'wilcoxon_p': p}, indent=1))


if __name__ == '__main__':
    main()
