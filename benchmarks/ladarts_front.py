"""LA-DARTS against the true accuracy-latency front of NAS-Bench-201's space.

Searches on the search-quality testbed (``experiments/search_quality.yml``, each variant's own
settings there) whose found cell is deployed as NB201's evaluation network: 16 channels and 5
cells per stage (``retrain_width``, ``retrain_cells``), timed on one 3x32x32 image (LA-DARTS's
``input_shape``). LA-DARTS's latency profile times that very network, as
``benchmarks/nb201_latency.py`` timed every cell of the space for the table this script reads
(``--latency``; the network and input must match it). Each found cell is scored by NB201's CIFAR-10
accuracy and the table's latency, against the front of every timed cell:

- its *gap*: the front's accuracy at its latency (the best cell no slower) minus its own;
- its latency as a ratio to the median latency of ``darts``'s cells;
- each configuration's *hypervolume*: the area its cells dominate beyond one reference point, the
  slowest timed cell at the space's median accuracy (the front's own is the most any set can reach);
- for LA-DARTS, its predictor's latency of the found cell against the table's;
- against ``darts``'s cell of the same seed, the median difference in accuracy and in latency,
  each with a two-sided Wilcoxon signed-rank test.

Every run is written with its machine after each (run again, it skips the runs it has; processes
given other ``--only`` configurations may share one output file). Every cell's latency is the median of
the table's timed cells with its operation counts (``nb201_latency.by_operation_counts``).

    python benchmarks/ladarts_front.py --seeds 0 1 2 3 4 --output benchmarks/results/ladarts_front_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib
import torch
from scipy.stats import wilcoxon

from nni_darts_ext import trial
from nni_darts_ext.config import parse_options
from nni_darts_ext.nb201 import load_table, nb201_string
from nni_darts_ext.nb201_summary import architecture_of

from figures import save_figure  # benchmarks/ is the script's first import path
from front import front_accuracy, hypervolume, pareto_front
from machine import cpu_name
from nb201_latency import by_operation_counts, load_latencies
from testbed import ROOT, SEARCH_QUALITY, search_curve, trial_parameters

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

DEPLOYED = {'retrain_width': 16, 'retrain_cells': 5}
"""NB201's evaluation network: what a found cell is deployed as, and what the latency table timed."""
INPUT_SHAPE = [3, 32, 32]
LATENCY_WEIGHTS = (0.001, 0.003, 0.01, 0.03)
"""lambda per predicted millisecond; NB201's networks take about 3 to 30 ms here."""


def configurations(weights: list[float], target_ms: float, target_weight: float) -> dict[str, tuple[str, dict]]:
    """Each configuration's name -> (variant, its options over the testbed's)."""
    latency = {'input_shape': INPUT_SHAPE}
    return {'darts': ('darts', {}), 'random': ('random', {}),
            **{f'ladarts {weight:g}': ('ladarts', {**latency, 'latency_weight': weight}) for weight in weights},
            f'ladarts target {target_ms:g} ms': ('ladarts', {**latency, 'latency_weight': target_weight,
                                                            'latency_target_ms': target_ms}),
            'pcdarts+ladarts': ('pcdarts+ladarts', latency)}


def scored(runs: list[dict[str, Any]], accuracy: dict[str, float], latency: dict[str, float]
           ) -> dict[str, dict[str, Any]]:
    """Per configuration: its cells' accuracies, latencies, gaps to the front, latency ratios to
    ``darts``'s median and hypervolume, the predictor's error on them, and against ``darts`` 's
    cells of the same seeds the median differences in accuracy and latency, each with a two-sided
    Wilcoxon signed-rank test."""
    front = pareto_front([(latency[c], accuracy[c], c) for c in latency])
    reference = (max(latency.values()), statistics.median(accuracy.values()))
    cells = {name: {r['seed']: nb201_string(architecture_of(r)) for r in runs if r['configuration'] == name}
             for name in dict.fromkeys(r['configuration'] for r in runs)}
    darts = cells.get('darts', {})
    darts_latency = statistics.median(latency[c] for c in darts.values()) if darts else None
    summary: dict[str, dict[str, Any]] = {}
    for name, by_seed in cells.items():
        found = list(by_seed.values())
        points = [(latency[c], accuracy[c], c) for c in found]
        predicted = [r['summary']['predicted_latency_ms'] for r in runs
                     if r['configuration'] == name and 'predicted_latency_ms' in r.get('summary', {})]
        seeds = sorted(set(by_seed) & set(darts))
        summary[name] = {
            'seeds': list(by_seed),
            'cifar10': [accuracy[c] for c in found],
            'latency_ms': [latency[c] for c in found],
            'gap': [round(front_accuracy(front, latency[c]) - accuracy[c], 4) for c in found],
            'latency_vs_darts': None if darts_latency is None else [round(latency[c] / darts_latency, 4)
                                                                    for c in found],
            'hypervolume': round(hypervolume(points, reference), 4),
            'predicted_ms': predicted,
            'predictor_error_pct': [round(100 * abs(p - latency[c]) / latency[c], 2)
                                    for p, c in zip(predicted, found)] if predicted else [],
            'paired_with_darts': {
                'seeds': seeds,
                **paired('cifar10', [accuracy[by_seed[s]] - accuracy[darts[s]] for s in seeds]),
                **paired('latency_ms', [latency[by_seed[s]] - latency[darts[s]] for s in seeds])}}
    summary['the front'] = {'hypervolume': round(hypervolume(front, reference), 4), 'reference': reference,
                            'cells': len(front)}
    return summary


def paired(quantity: str, differences: list[float]) -> dict[str, float | None]:
    """The median of per-seed ``differences`` and a two-sided Wilcoxon signed-rank test's p of them."""
    if not differences:
        return {f'{quantity}_median_difference': None, f'{quantity}_wilcoxon_p': None}
    p = float(wilcoxon(differences).pvalue) if any(differences) else 1.0
    return {f'{quantity}_median_difference': round(statistics.median(differences), 4),
            f'{quantity}_wilcoxon_p': round(p, 4)}


def read_runs(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())['runs'] if path.is_file() else []


def write(path: Path, content: dict[str, Any]) -> None:
    """Whole or not at all, so that a process reading it beside this one never sees half a file."""
    partial = path.with_suffix('.partial')
    partial.write_text(json.dumps(content, indent=1))
    partial.replace(path)


def plot(runs: list[dict[str, Any]], accuracy: dict[str, float], latency: dict[str, float], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(9, 5.5))
    axes.scatter(list(latency.values()), [accuracy[c] for c in latency], s=2, alpha=0.15, color='grey',
                 label=f'every cell ({len(latency)})')
    front = pareto_front([(latency[c], accuracy[c], c) for c in latency])
    axes.step([p[0] for p in front], [p[1] for p in front], where='post', color='black', linewidth=1,
              label='Pareto front')
    for index, name in enumerate(dict.fromkeys(r['configuration'] for r in runs)):
        found = [nb201_string(architecture_of(r)) for r in runs if r['configuration'] == name]
        axes.scatter([latency[c] for c in found], [accuracy[c] for c in found], s=30, color=f'C{index % 10}',
                     marker='osD^vPX*'[index % 8], label=name, edgecolors='black', linewidths=0.5)
    axes.set_ylim(80, 95)
    axes.set_xlabel('latency (ms, batch 1, 1 thread, NB201 C=16 N=5 on 3x32x32)')
    axes.set_ylabel('NB201 CIFAR-10 test accuracy (%)')
    axes.legend(fontsize=7, loc='lower right')
    save_figure(figure, path, axes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument('--weights', nargs='+', type=float, default=list(LATENCY_WEIGHTS),
                        help='LA-DARTS latency weights (lambda per ms), one configuration each')
    parser.add_argument('--target-ms', type=float, default=10.0,
                        help="the latency target of LA-DARTS's hinge configuration (ms)")
    parser.add_argument('--target-weight', type=float, default=0.03, help='its lambda per ms above the target')
    parser.add_argument('--only', nargs='+', metavar='CONFIGURATION',
                        help='run only these configurations (names as the results file gives them)')
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help="a trial parameter over the testbed's")
    parser.add_argument('--ladarts-option', action='append', default=[], metavar='NAME=VALUE',
                        help="an option of every LA-DARTS configuration (latency_cache=..., latency_samples=...)")
    parser.add_argument('--table', type=Path, default=ROOT.parent / 'shared' / 'nb201' / 'nb201.csv',
                        help="NB201's table (default: the shared folder beside the repository)")
    parser.add_argument('--latency', type=Path, default=ROOT / 'benchmarks' / 'results' / 'nb201_latency_cpu.json',
                        help="every cell's latency, from benchmarks/nb201_latency.py")
    parser.add_argument('--output', type=Path, default=ROOT / 'benchmarks' / 'results' / 'ladarts_front_cpu.json')
    arguments = parser.parse_args()
    trial.configure_output()
    torch.set_num_threads(1)
    accuracy = {cell: values['cifar10'] for cell, values in load_table(arguments.table).accuracy.items()}
    network, timed = load_latencies(arguments.latency)
    latency = by_operation_counts(timed, accuracy)
    if ([network['width'], network['cells']] != [DEPLOYED['retrain_width'], DEPLOYED['retrain_cells']]
            or network['input'][1:] != INPUT_SHAPE):
        raise SystemExit(f'error: {arguments.latency} timed another network ({network}); accepted: a table of '
                         f'benchmarks/nb201_latency.py at width 16, 5 cells per stage, input 3x32x32')
    chosen = configurations(arguments.weights, arguments.target_ms, arguments.target_weight)
    unknown = set(arguments.only or ()) - set(chosen)
    if unknown:
        raise SystemExit(f'error: --only names unknown configurations {sorted(unknown)}; accepted: {sorted(chosen)}')
    machine = f'{cpu_name()}, 1 thread, torch {torch.__version__}'
    runs = read_runs(arguments.output)
    for seed in arguments.seeds:
        for name, (variant, options) in chosen.items():
            if (arguments.only and name not in arguments.only) or any(
                    (r['configuration'], r['seed']) == (name, seed) for r in runs):
                continue
            latency_options = parse_options(arguments.ladarts_option) if 'input_shape' in options else {}
            parameters = {**trial_parameters(SEARCH_QUALITY, variant), **DEPLOYED, **options, **latency_options,
                          **parse_options(arguments.set), 'threads': 1}
            run = {**search_curve(variant, seed, parameters), 'configuration': name, 'options': options,
                   'machine': machine}
            cell = nb201_string(architecture_of(run))
            runs = [*read_runs(arguments.output), run]  # another process may have added runs meanwhile
            write(arguments.output, {'latency_table': str(arguments.latency), 'runs': runs})
            print(f'{name} seed {seed}: CIFAR-10 {accuracy[cell]:.2f}, {latency.get(cell, float("nan")):.2f} ms '
                  f'({run["search_s"]} s)', flush=True)
    untimed = sorted({cell for r in runs if (cell := nb201_string(architecture_of(r))) not in latency})
    if untimed:
        raise SystemExit(f'error: {arguments.latency} has no timed cell with the operation counts of {len(untimed)} '
                         f'found cells ({untimed[0]} ...); accepted: a table that has every count '
                         '(python benchmarks/nb201_latency.py times them first)')
    summary = scored(runs, accuracy, latency)
    write(arguments.output, {'latency_table': str(arguments.latency), 'summary': summary, 'runs': runs})
    plot(runs, accuracy, latency, arguments.output.with_suffix('.png'))
    print('| configuration | searches | CIFAR-10 median | vs darts (paired median, p) | latency median (ms) | '
          'latency / darts | latency vs darts (paired median ms, p) | median gap to the front | hypervolume | '
          'predictor error (median %) |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for name, row in summary.items():
        if name == 'the front':
            continue
        ratio = '–' if row['latency_vs_darts'] is None else f"{statistics.median(row['latency_vs_darts']):.2f}"
        error = f"{statistics.median(row['predictor_error_pct']):.1f}" if row['predictor_error_pct'] else '–'
        versus = row['paired_with_darts']
        accuracy_pair, latency_pair = ('–' if versus[f'{q}_median_difference'] is None or name == 'darts' else
                                       f"{versus[f'{q}_median_difference']:+.2f}, {versus[f'{q}_wilcoxon_p']:.2g}"
                                       for q in ('cifar10', 'latency_ms'))
        print(f"| {name} | {len(row['cifar10'])} | {statistics.median(row['cifar10']):.2f} | {accuracy_pair} | "
              f"{statistics.median(row['latency_ms']):.2f} | {ratio} | {latency_pair} | "
              f"{statistics.median(row['gap']):.2f} | {row['hypervolume']:.1f} | {error} |")
    print(f"| the front | {summary['the front']['cells']} cells | | | | | | 0 | "
          f"{summary['the front']['hypervolume']:.1f} | |")

if __name__ == '__main__':
    main()
