"""Search-step cost of the architecture-gradient estimators, side by side with NNI's DARTS.

One search step = the architecture step (by the variant's estimator) and the weight step, on
the quick start's space and data at one batch size. Each configuration runs in its own process,
so its peak resident memory (``ru_maxrss``) is its own. Ratios are to NNI's first-order DARTS.

    python benchmarks/stabilized_vs_darts.py --output benchmarks/results/stabilized_vs_darts_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

CONFIGURATIONS = {
    'darts (NNI, first order)': ('darts', {}),
    'darts2 (finite differences)': ('darts2', {}),
    'stabilized (finite differences)': ('stabilized', {}),
    'stabilized (double backward)': ('stabilized', {'products': 'double_backward'}),
}


class StepTimer(pl.Callback):
    def __init__(self):
        self.seconds: list[float] = []

    def on_train_batch_start(self, *_):
        self.started = time.perf_counter()

    def on_train_batch_end(self, *_):
        self.seconds.append(time.perf_counter() - self.started)


def measure(name: str, batch: int) -> dict:
    """One search epoch of one configuration in this process; the median step after the first two."""
    from nni_darts_ext import make_strategy, trial
    from nni_darts_ext.config import split_parameters

    variant, options = CONFIGURATIONS[name]
    config, _ = split_parameters({'variant': variant, 'batch_size': batch, 'search_epochs': 1, 'accelerator': 'cpu'})
    pl.seed_everything(0, verbose=False)
    _, data, space, size, _ = trial.prepare(config, {})
    strategy = make_strategy(variant, **options)
    timer = StepTimer()
    evaluator = strategy.mutate_evaluator(trial.search_evaluator(data, config, [timer]))
    evaluator.evaluate(strategy.mutate_model(space.search_space(size)))
    return {'step_s': statistics.median(timer.seconds[2:]), 'steps': len(timer.seconds[2:]),
            'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--only', choices=CONFIGURATIONS, help=argparse.SUPPRESS)  # one configuration, in a child
    parser.add_argument('--output', type=Path)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    if arguments.only:
        print(json.dumps(measure(arguments.only, arguments.batch)))
        return
    runs = {}
    for name in CONFIGURATIONS:
        child = subprocess.run([sys.executable, __file__, '--only', name, '--batch', str(arguments.batch), '--threads', str(arguments.threads)],
                               capture_output=True, text=True, check=True)
        runs[name] = json.loads(child.stdout.strip().splitlines()[-1])
    machine = f'{platform.processor() or platform.machine()}, {arguments.threads} threads, torch {torch.__version__}'
    base = runs['darts (NNI, first order)']
    print(f'# {machine}; quick-start space (darts_small, search size), digits, batch {arguments.batch}, '
          f'median of {base["steps"]} search steps')
    print('| estimator | step s | step ratio | peak RSS MB | peak RSS ratio |')
    print('|---|---|---|---|---|')
    for name, run in runs.items():
        print(f'| {name} | {run["step_s"]:.3f} | {run["step_s"] / base["step_s"]:.2f} | '
              f'{run["peak_rss_mb"]:.0f} | {run["peak_rss_mb"] / base["peak_rss_mb"]:.2f} |')
    if arguments.output:
        arguments.output.write_text(json.dumps({'machine': machine, 'arguments': {**vars(arguments), 'output': None},
                                                'runs': runs}, indent=2))


if __name__ == '__main__':
    main()
