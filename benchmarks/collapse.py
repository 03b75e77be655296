"""Collapse experiment: skip-connects in the derived normal cell, epoch by epoch, over a long search.

NNI's DARTS and the variants named, each searched for ``--epochs`` epochs (default 16: four times
the quick start's 4) on the quick start's space and data, for each seed. Writes the per-epoch
records (JSON, after every run) and a PNG of the skip-connect curves.

    python benchmarks/collapse.py --train-subset 640 --batch-size 32 --output benchmarks/results/collapse_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import matplotlib
import pytorch_lightning as pl
import torch

from nni_darts_ext import trial
from nni_darts_ext.board import TENSORBOARD_DIR, TrialBoard
from nni_darts_ext.collapse import CollapseMonitor
from nni_darts_ext.config import split_parameters

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def search_curve(variant: str, seed: int, parameters: dict) -> dict:
    """One search; its per-epoch records and the architecture it exports."""
    config, options = split_parameters({**parameters, 'variant': variant, 'seed': seed, 'accelerator': 'cpu'})
    pl.seed_everything(seed, workers=True, verbose=False)
    strategy, data, space, search_size, _ = trial.prepare(config, options)
    records: list[dict] = []
    started = time.perf_counter()
    # the search's per-epoch checkpoints are not kept: each search gets a scratch folder
    with tempfile.TemporaryDirectory() as scratch:
        found = trial.search(strategy, space, search_size, data, config, records,
                             CollapseMonitor(config.eigenvalue_batches, config.early_stop), Path(scratch),
                             trial.search_settings(config, options), TrialBoard(Path(scratch) / TENSORBOARD_DIR))
    return {'variant': variant, 'seed': seed, 'search_s': round(time.perf_counter() - started, 1),
            'arc_learning_rate': strategy.arc_learning_rate, 'epochs': records,
            'arch': trial.architecture.describe(found)}


def plot(runs: list[dict], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 3.5))
    colors = {}
    for run in runs:
        color = colors.setdefault(run['variant'], f'C{len(colors)}')
        epochs = [r['epoch'] for r in run['epochs']]
        # a small offset per seed keeps identical curves apart
        axes.plot(epochs, [r['skip_connects'] + 0.05 * run['seed'] for r in run['epochs']], color=color,
                  marker='o', markersize=3, label=run['variant'] if run['seed'] == runs[0]['seed'] else None)
    axes.set_xlabel('search epoch')
    axes.set_ylabel('skip-connects in the normal cell')
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+', default=['darts', 'stabilized'])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=16)
    parser.add_argument('--train-subset', type=int, help='training images (default: all of the quick start\'s)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--output', type=Path, default=Path('benchmarks/results/collapse_cpu.json'))
    arguments = parser.parse_args()
    trial.configure_logging()
    torch.set_num_threads(arguments.threads)
    machine = f'{platform.processor() or platform.machine()}, {arguments.threads} thread(s), torch {torch.__version__}'
    parameters = {'search_epochs': arguments.epochs, 'batch_size': arguments.batch_size,
                  'train_subset': arguments.train_subset}
    runs = []
    for seed in arguments.seeds:
        for variant in arguments.variants:
            runs.append(search_curve(variant, seed, parameters))
            counts = [r['skip_connects'] for r in runs[-1]['epochs']]
            print(f'{variant} seed {seed}: skip-connects per epoch {counts} ({runs[-1]["search_s"]} s)', flush=True)
            arguments.output.write_text(json.dumps({'machine': machine, 'parameters': parameters, 'runs': runs}, indent=2))
    plot(runs, arguments.output.with_suffix('.png'))
    print('| variant | final skip-connects per seed | mean |')
    print('|---|---|---|')
    for variant in arguments.variants:
        finals = [run['epochs'][-1]['skip_connects'] for run in runs if run['variant'] == variant]
        print(f'| {variant} | {", ".join(map(str, finals))} | {sum(finals) / len(finals):.2f} |')


if __name__ == '__main__':
    main()
