"""Collapse, shown or refuted: what longer searches find on the search-quality testbed, on NAS-Bench-201's ground truth.

Each variant (default ``darts``, ``stabilized``, ``pdarts``, ``pcdarts``) searched with its trial
settings in ``experiments/search_quality.yml`` at each ``--budgets`` multiple of their
``search_epochs`` (warm-ups and P-DARTS's stages stretched alike), at the 1x budget's
architecture learning rate throughout (``arc_travel`` grows with the budget), for each seed.
DARTS is said to collapse as its search grows longer: parameter-free operations (skip-connects,
pooling) take over the cell and its accuracy falls, down to NB201's all-skip cell (54.30 on
CIFAR-10). Each found cell is scored by NB201's published accuracies (``--table``). Writes every
run with its machine (JSON, after each; run again, it skips the runs it has) and a PNG of the
CIFAR-10 accuracy, the parameter-free edges and the skip-connects per budget.

    python benchmarks/collapse.py --seeds 0 1 2 --budgets 1 2 4 8 --output benchmarks/results/collapse_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib
import torch

from nni_darts_ext import architecture, trial
from nni_darts_ext.config import parse_options
from nni_darts_ext.nb201 import GroundTruth, load_table
from nni_darts_ext.nb201_summary import architecture_of

from figures import save_figure  # benchmarks/ is the script's first import path
from machine import cpu_name
from testbed import ROOT, SEARCH_QUALITY, search_curve, trial_parameters

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def stretched(parameters: dict[str, Any], budget: int) -> dict[str, Any]:
    """``parameters`` with ``budget`` times the search epochs, warm-up, stages and ``arc_travel``."""
    longer = {**parameters, 'search_epochs': parameters['search_epochs'] * budget}
    for name in ('arc_travel', 'warmup_epochs'):
        if longer.get(name) is not None:
            longer[name] = longer[name] * budget
    if isinstance(longer.get('stages'), list):  # [cells, operations, epochs, warm-up, skip dropout]
        longer['stages'] = [[cells, kept, epochs * budget, warmup * budget, dropout]
                            for cells, kept, epochs, warmup, dropout in longer['stages']]
    return longer


ALL_SKIP_CIFAR10 = 54.30
"""NB201's all-skip cell: first- and second-order DARTS's result in the NB201 paper."""


def run_once(variant: str, budget: int, seed: int, parameters: dict[str, Any]) -> dict[str, Any]:
    """One search at ``budget``; its found cell's collapse diagnostics."""
    run = search_curve(variant, seed, stretched(parameters, budget))
    found = run.pop('architecture')
    last = run['epochs'][-1]
    return {**run, 'budget': budget, 'normalized_entropy': last['normalized_entropy'],
            'parameter_free': architecture.parameter_free(found), 'skip_connects': architecture.skip_connects(found)}


def cifar10(run: dict[str, Any], table: GroundTruth) -> float:
    """The run's found cell's NB201 CIFAR-10 test accuracy."""
    return table.score(architecture_of(run))['nb201_cifar10']


def plot(runs: list[dict[str, Any]], table: GroundTruth, path: Path) -> None:
    figure, (accuracy, free, skips) = plt.subplots(1, 3, figsize=(15, 3.8))
    for index, variant in enumerate(dict.fromkeys(run['variant'] for run in runs)):
        budgets = sorted({run['budget'] for run in runs if run['variant'] == variant})
        for axes, value in ((accuracy, lambda r: cifar10(r, table)), (free, lambda r: r['parameter_free']),
                            (skips, lambda r: r['skip_connects'])):
            per_budget = {b: [value(r) for r in runs if (r['variant'], r['budget']) == (variant, b)] for b in budgets}
            axes.plot(budgets, [statistics.median(per_budget[b]) for b in budgets], marker='o', color=f'C{index}',
                      label=variant)
            for b in budgets:
                axes.scatter([b] * len(per_budget[b]), per_budget[b], s=8, color=f'C{index}', alpha=0.4)
    accuracy.axhline(ALL_SKIP_CIFAR10, color='black', linestyle='--', linewidth=1, label='all-skip cell 54.30')
    accuracy.set_ylabel('NB201 CIFAR-10 test accuracy (median, dots: seeds)')
    free.set_ylabel('parameter-free edges (median, dots: seeds)')
    skips.set_ylabel('skip-connects (median, dots: seeds)')
    for axes in (accuracy, free, skips):
        axes.set_xlabel('search budget (x the benchmark\'s)')
        axes.set_xscale('log', base=2)
    accuracy.legend(fontsize=8)
    save_figure(figure, path, accuracy, free, skips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+', default=['darts', 'stabilized', 'pdarts', 'pcdarts'])
    parser.add_argument('--budgets', nargs='+', type=int, default=[1, 2, 4])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--experiment', type=Path, default=SEARCH_QUALITY)
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help="a trial parameter over the experiment's")
    parser.add_argument('--table', type=Path, default=ROOT.parent / 'shared' / 'nb201' / 'nb201.csv',
                        help="NB201's table (default: the shared folder beside the repository)")
    parser.add_argument('--output', type=Path, default=ROOT / 'benchmarks' / 'results' / 'collapse_cpu.json')
    arguments = parser.parse_args()
    trial.configure_output()
    torch.set_num_threads(1)
    table = load_table(arguments.table)
    written = json.loads(arguments.output.read_text()) if arguments.output.is_file() else {}
    machine = f'{cpu_name()}, 1 thread, torch {torch.__version__}'
    runs = [{'machine': written['machine'], **run} for run in written.get('runs', [])]  # each run's own host
    overrides = parse_options(arguments.set)
    for variant in arguments.variants:  # a variant's budgets and seeds must differ in nothing else
        other = next((run.get('set', {}) for run in runs
                      if run['variant'] == variant and run.get('set', {}) != overrides), None)
        if other is not None:
            raise SystemExit(f'error: {arguments.output} holds {variant} searches with --set {other}, not '
                             f'{overrides}; accepted: the same --set, or another --output')
    for seed in arguments.seeds:
        for budget in arguments.budgets:
            for variant in arguments.variants:
                if any((r['variant'], r['budget'], r['seed']) == (variant, budget, seed) for r in runs):
                    continue
                parameters = {**trial_parameters(arguments.experiment, variant), **overrides, 'threads': 1}
                runs.append({**run_once(variant, budget, seed, parameters), 'machine': machine, 'set': overrides})
                print(f"{variant} {budget}x seed {seed}: CIFAR-10 {cifar10(runs[-1], table):.2f}, "
                      f"{runs[-1]['parameter_free']} parameter-free edges, normalized entropy "
                      f"{runs[-1]['normalized_entropy']:.3f} ({runs[-1]['search_s']} s)", flush=True)
                arguments.output.write_text(json.dumps({
                    'machine': machine,
                    'experiment': str(arguments.experiment.relative_to(ROOT) if arguments.experiment.is_relative_to(ROOT)
                                      else arguments.experiment), 'runs': runs}, indent=1))
    plot(runs, table, arguments.output.with_suffix('.png'))
    print('| variant | budget | CIFAR-10 median | CIFAR-10 per seed | parameter-free edges per seed '
          '| skip-connects per seed | normalized entropy |')
    print('|---|---:|---:|---|---|---|---|')
    for variant in arguments.variants:
        for budget in arguments.budgets:
            chosen = sorted((r for r in runs if (r['variant'], r['budget']) == (variant, budget)), key=lambda r: r['seed'])
            if not chosen:
                continue
            accuracies = [cifar10(r, table) for r in chosen]
            per_seed = ', '.join(f'{a:.2f}' for a in accuracies)
            free = ', '.join(str(r['parameter_free']) for r in chosen)
            skips = ', '.join(str(r['skip_connects']) for r in chosen)
            entropies = ', '.join(f"{r['normalized_entropy']:.2f}" for r in chosen)
            print(f'| {variant} | {budget}x | {statistics.median(accuracies):.2f} | {per_seed} | {free} | {skips} '
                  f'| {entropies} |')


if __name__ == '__main__':
    main()
