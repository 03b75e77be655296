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

from machine import write_results

REFERENCE = "NNI's DARTS (first order)"
CONFIGURATIONS = {
    REFERENCE: ('darts', None),  # NNI's own strategy, unchanged
    'darts2 (double backward, default)': ('darts2', {}),
    'darts2 (finite differences)': ('darts2', {'products': 'finite_difference'}),
    'stabilized (double backward, default)': ('stabilized', {}),
    'stabilized (finite differences)': ('stabilized', {'products': 'finite_difference'}),
}
"""Name -> (variant whose trial settings apply, its options; ``None``: NNI's ``DARTS`` itself)."""


class StepTimer(pl.Callback):
    def __init__(self):
        self.seconds: list[float] = []

    def on_train_batch_start(self, *_):
        self.started = time.perf_counter()

    def on_train_batch_end(self, *_):
        self.seconds.append(time.perf_counter() - self.started)


def measure(name: str, batch: int, search_subset: int | None = None, warmup_steps: int = 2) -> dict:
    """One search epoch of one configuration in this process (on ``search_subset`` training images,
    default all); the median step after the first ``warmup_steps``."""
    from nni.nas.strategy import DARTS

    from nni_darts_ext import make_strategy, trial
    from nni_darts_ext.config import split_parameters

    variant, options = CONFIGURATIONS[name]
    config, _ = split_parameters({'variant': variant, 'batch_size': batch, 'search_subset': search_subset,
                                  'search_epochs': 1, 'accelerator': 'cpu'})
    pl.seed_everything(0, verbose=False)
    _, data, space, size, _ = trial.prepare(config, {})
    strategy = (DARTS(arc_learning_rate=3e-4, gradient_clip_val=5.0) if options is None
                else make_strategy(variant, **options))
    timer = StepTimer()
    evaluator = strategy.mutate_evaluator(trial.search_evaluator(data, config, [timer]))
    evaluator.evaluate(strategy.mutate_model(space.search_space(size)))
    timed = timer.seconds[warmup_steps:]
    if not timed:
        raise SystemExit(f'{len(timer.seconds)} search steps, none after {warmup_steps} warm-up steps: '
                         'raise --search-subset or lower --batch')
    return {'step_s': statistics.median(timed), 'steps': len(timed),
            'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--search-subset', type=int,
                        help="training images of the search epoch (default: all of the quick start's); half of "
                             'them train the weights, and a step must remain after the warm-up steps')
    parser.add_argument('--warmup-steps', type=int, default=2, help='search steps not timed')
    parser.add_argument('--only', choices=CONFIGURATIONS, help=argparse.SUPPRESS)  # one configuration, in a child
    parser.add_argument('--output', type=Path)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    if arguments.only:
        print(json.dumps(measure(arguments.only, arguments.batch, arguments.search_subset, arguments.warmup_steps)))
        return
    runs = {}
    for name in CONFIGURATIONS:
        subset = ['--search-subset', str(arguments.search_subset)] if arguments.search_subset else []
        child = subprocess.run([sys.executable, __file__, '--only', name, '--batch', str(arguments.batch),
                                '--threads', str(arguments.threads), '--warmup-steps', str(arguments.warmup_steps),
                                *subset],
                               capture_output=True, text=True)
        if child.returncode:  # the child's last line of error output says why
            sys.exit(f'{name}: {(child.stderr.strip().splitlines() or ["exit status " + str(child.returncode)])[-1]}')
        runs[name] = json.loads(child.stdout.strip().splitlines()[-1])
    machine = f'{platform.processor() or platform.machine()}, {arguments.threads} threads, torch {torch.__version__}'
    base = runs[REFERENCE]
    print(f'# {machine}; quick-start space (darts_small, search size), digits, batch {arguments.batch}, '
          f'median of {base["steps"]} search steps')
    print('| estimator | step s | step ratio | peak RSS MB | peak RSS ratio |')
    print('|---|---|---|---|---|')
    for name, run in runs.items():
        print(f'| {name} | {run["step_s"]:.3f} | {run["step_s"] / base["step_s"]:.2f} | '
              f'{run["peak_rss_mb"]:.0f} | {run["peak_rss_mb"] / base["peak_rss_mb"]:.2f} |')
    write_results(arguments, machine, runs=runs)


if __name__ == '__main__':
    main()
