"""Searches that converge: a search's final normalized entropy for each ``arc_travel``.

A variant (default ``darts``) searched with the search settings of an experiment's trial command
(default ``experiments/search_quality.yml``, the search-quality testbed) at each ``--travels``
value (``none``: the variant's own ``arc_learning_rate``) and seed. Writes every run's per-epoch
records to the JSON after each run (run again, it skips the runs it has) and a PNG of the
normalized entropy per epoch.

    python benchmarks/arc_travel.py --travels none 6 20 60 120 --seeds 0 1 --output benchmarks/results/arc_travel_cpu.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib
import torch

from nni_darts_ext import trial
from nni_darts_ext.architecture import NOT_CONVERGED_ABOVE
from nni_darts_ext.config import parse_options

from figures import save_figure  # benchmarks/ is the script's first import path
from machine import cpu_name
from testbed import ROOT, SEARCH_QUALITY, search_curve, trial_parameters

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def travel(text: str) -> float | None:
    return None if text.lower() == 'none' else float(text)


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 3.5))
    colors: dict[Any, str] = {}
    for run in runs:
        first = run['arc_travel'] not in colors  # one legend entry per arc_travel
        color = colors.setdefault(run['arc_travel'], f'C{len(colors)}')
        axes.plot([r['epoch'] for r in run['epochs']], [r['normalized_entropy'] for r in run['epochs']], color=color,
                  marker='o', markersize=3, label=f"arc_travel {run['arc_travel']}" if first else None)
    axes.axhline(NOT_CONVERGED_ABOVE, color='grey', linestyle='--', linewidth=1)
    axes.set_xlabel('search epoch')
    axes.set_ylabel('normalized entropy')
    axes.set_ylim(0, 1.02)
    axes.legend(fontsize=8)
    save_figure(figure, path, axes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--experiment', type=Path, default=SEARCH_QUALITY)
    parser.add_argument('--variant', default='darts')
    parser.add_argument('--travels', nargs='+', type=travel, default=[None, 6.0, 20.0, 60.0, 120.0])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help="a trial parameter over the experiment's")
    parser.add_argument('--output', type=Path, default=ROOT / 'benchmarks' / 'results' / 'arc_travel_cpu.json')
    arguments = parser.parse_args()
    trial.configure_output()
    torch.set_num_threads(1)
    parameters = {**trial_parameters(arguments.experiment, arguments.variant), **parse_options(arguments.set),
                  'threads': 1}
    written = json.loads(arguments.output.read_text()) if arguments.output.is_file() else {}
    runs = written.get('runs', [])
    for seed in arguments.seeds:
        for value in arguments.travels:
            if any((r['seed'], r['arc_travel']) == (seed, value) for r in runs):
                continue
            run = search_curve(arguments.variant, seed, {**parameters, 'arc_travel': value})
            run.pop('architecture')
            runs.append({**run, 'arc_travel': value})
            final = run['epochs'][-1]['normalized_entropy']
            print(f'arc_travel {value} seed {seed}: arc_learning_rate {run["arc_learning_rate"]:.4g}, '
                  f'final normalized entropy {final:.4f} ({run["search_s"]} s)', flush=True)
            arguments.output.write_text(json.dumps({
                'machine': f'{cpu_name()}, 1 thread, torch {torch.__version__}', 'variant': arguments.variant,
                'parameters': parameters, 'runs': runs}, indent=1))
    plot(runs, arguments.output.with_suffix('.png'))
    print('| arc_travel | arc_learning_rate | final normalized entropy per seed |')
    print('|---|---:|---|')
    for value in dict.fromkeys(r['arc_travel'] for r in runs):
        chosen = [r for r in runs if r['arc_travel'] == value]
        finals = ', '.join(f"{r['epochs'][-1]['normalized_entropy']:.3f}" for r in chosen)
        print(f"| {value} | {chosen[0]['arc_learning_rate']:.4g} | {finals} |")


if __name__ == '__main__':
    main()
