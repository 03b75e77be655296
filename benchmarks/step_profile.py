"""Where a search step's time and memory go, per variant, against NNI's own DARTS in the same run.

A step is one batch of the real search loop as a trial runs it (Lightning, NNI's one-shot module,
the variant's architecture step, the weight step, gradient clipping, logging), on random images of
NNI's hub DARTS space, architecture steps on from the first batch (no warm-up). Each variant runs
in its own process, in turn with the others (A/B/A/B), ``--rounds`` times; a round's figures are
means over its steps (NNI logs the probabilities every 10th), the report's the median over rounds:

- ``step_ms``: from one batch's start to the next's (everything the loop does);
- its parts, each exclusive of the others nested in it: the supernet's ``forward`` (the training
  module's loss included), ``backward`` (``torch.autograd.backward`` and ``grad``), ``optimizer``
  (every optimizer's ``step``), ``clipping``, ``probabilities`` (NNI's ``export_probs`` and
  ``log_probs``), ``resample``, and ``rest`` (Lightning, logging, Python between them);
- ``memory_mb``: the growth of the process's peak resident memory over the search, from its
  resident memory before the first step (the supernet, the data and the optimizers built); with
  ``--warm-process``, after one step of a tiny network first, so that what torch maps on its
  first use (code, thread pools, kernels) counts in neither supernet's growth.

    python benchmarks/step_profile.py                            # every variant, CPU
    python benchmarks/step_profile.py --variants pcdarts --k 4 8 --rounds 3
    python benchmarks/step_profile.py --variants darts pcdarts --layouts default channels-last

Every ratio is to the first run, NNI's DARTS in the first of ``--layouts``, and again to ``darts``
(our first-order step) where it ran.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from nni_darts_ext import make_strategy  # first: it quiets NNI's import-time warnings about new torch classes
import pytorch_lightning as pl
from nni.nas.evaluator.pytorch import DataLoader, Lightning
from nni.nas.strategy import DARTS
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils.data import TensorDataset

from machine import cpu_name
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.training import ClassifierModule, make_trainer

BASE = 'nni-darts'
"""NNI's own DARTS strategy, the base of every ratio."""
VARIANTS = ('darts', 'pcdarts', 'darts2', 'stabilized', 'ladarts', 'pcdarts+stabilized')
LAYOUTS = ('default', 'channels-last')
PARTS = ('forward', 'backward', 'optimizer', 'clipping', 'probabilities', 'resample', 'rest')
CLIP = 5.0
"""DARTS's gradient clip, which every variant here and NNI's DARTS share."""


class ExclusiveTimer:
    """Seconds per part, each exclusive of the parts timed inside it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []  # [part, started]

    def start(self, name: str) -> None:
        now = time.perf_counter()
        if self._stack:
            outer = self._stack[-1]
            self.seconds[outer[0]] += now - outer[1]
        self._stack.append([name, now])

    def stop(self) -> None:
        now = time.perf_counter()
        name, started = self._stack.pop()
        self.seconds[name] += now - started
        if self._stack:
            self._stack[-1][1] = now

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        self.start(name)
        try:
            yield
        finally:
            self.stop()

    def wrap(self, name: str, function: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.part(name):
                return function(*args, **kwargs)
        return timed

    def take(self) -> dict[str, float]:
        taken, self.seconds = dict(self.seconds), defaultdict(float)
        return taken


def resident_mb(field: str) -> float:
    return int(re.search(rf'{field}:\s+(\d+) kB', Path('/proc/self/status').read_text()).group(1)) / 1024


class StepClock(pl.Callback):
    """Each batch's seconds (start to next start) and its parts, after ``skip`` warm-up batches;
    the peak resident memory is reset when the first batch starts."""

    def __init__(self, timer: ExclusiveTimer, skip: int):
        self.timer, self.skip = timer, skip
        self.steps: list[dict[str, float]] = []
        self._started: float | None = None
        self.resident_before = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if batch_idx == 0:
            self.resident_before = resident_mb('VmRSS')
            Path('/proc/self/clear_refs').write_text('5')  # peak resident memory := current
        if self._started is not None and batch_idx > self.skip:
            parts = self.timer.take()
            parts['rest'] = (now - self._started) - sum(parts.values())
            self.steps.append({'step': now - self._started, **parts})
        self.timer.take()
        self._started = now


def instrument(timer: ExclusiveTimer, search_module: Any) -> None:
    """Route the step's parts through ``timer``: patched functions and hooks of this process."""
    torch.autograd.backward = timer.wrap('backward', torch.autograd.backward)
    torch.autograd.grad = timer.wrap('backward', torch.autograd.grad)
    torch.nn.utils.clip_grad_norm_ = timer.wrap('clipping', torch.nn.utils.clip_grad_norm_)
    register_optimizer_step_pre_hook(lambda *_: timer.start('optimizer'))
    register_optimizer_step_post_hook(lambda *_: timer.stop())
    training_module = search_module.training_module
    training_module._loss_and_accuracy = timer.wrap('forward', training_module._loss_and_accuracy)
    for name in ('export_probs', 'log_probs'):
        setattr(search_module, name, timer.wrap('probabilities', getattr(search_module, name)))
    search_module.resample = timer.wrap('resample', search_module.resample)


def warm_process() -> None:
    """One training step of a tiny network of the supernet's kinds of layers, second derivatives
    included: torch's one-time costs paid before the baseline."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, padding=1, groups=4), torch.nn.Conv2d(4, 4, 1), torch.nn.MaxPool2d(3, 1, 1),
        torch.nn.AvgPool2d(3, 1, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    loss = torch.nn.functional.cross_entropy(net(torch.randn(2, 3, 8, 8)), torch.tensor([0, 1]))
    gradients = torch.autograd.grad(loss, list(net.parameters()), create_graph=True)
    sum((gradient * gradient).sum() for gradient in gradients).backward()
    torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9).step()


def build_strategy(variant: str, k: int) -> Any:
    if variant == BASE:
        return DARTS(gradient_clip_val=CLIP)
    options = {'warmup_epochs': 0, 'gradient_clip_val': CLIP}
    if 'pcdarts' in variant:
        options['k'] = k
    return make_strategy(variant, **options)


def profile_one(variant: str, arguments: argparse.Namespace) -> dict[str, Any]:
    """One process's run of ``variant``: its steps' medians and its memory growth."""
    torch.set_num_threads(arguments.threads)
    if arguments.warm_process:
        warm_process()
    torch.manual_seed(0)
    size = arguments.image_size
    space = load_space('nni:DARTS', 3, 10, size).search_space(Size(arguments.width, arguments.cells))
    strategy = build_strategy(variant, arguments.k)
    batches = arguments.skip + arguments.steps + 1
    images = torch.randn(batches * arguments.batch, 3, size, size)
    labels = torch.randint(0, 10, (len(images),))
    timer = ExclusiveTimer()
    clock = StepClock(timer, arguments.skip)
    evaluator = Lightning(
        ClassifierModule(channels_last=arguments.layout == 'channels-last'), make_trainer(1, 'cpu', 1, [clock]),
        train_dataloaders=DataLoader(TensorDataset(images, labels), batch_size=arguments.batch, shuffle=True),
        val_dataloaders=DataLoader(TensorDataset(images, labels), batch_size=arguments.batch, shuffle=True))
    supernet = strategy.mutate_model(space)
    search_module = strategy.mutate_evaluator(evaluator)
    instrument(timer, search_module.module)
    search_module.trainer.limit_val_batches = 0
    search_module.evaluate(supernet)
    means = {key: statistics.mean(step.get(key, 0.0) for step in clock.steps) * 1000
             for key in {key for step in clock.steps for key in step}}
    return {'step_ms': means.pop('step'), 'parts_ms': means,
            'memory_mb': resident_mb('VmHWM') - clock.resident_before}


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS))
    parser.add_argument('--k', type=int, nargs='+', default=[4, 8], help="PC-DARTS's K, each a run of its own")
    parser.add_argument('--width', type=int, default=8)
    parser.add_argument('--cells', type=int, default=5)
    parser.add_argument('--image-size', type=int, default=16)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--skip', type=int, default=3, help='warm-up batches, not timed')
    parser.add_argument('--steps', type=int, default=10, help='timed batches per round')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--layouts', nargs='+', choices=LAYOUTS, default=['default'],
                        help="the supernets' memory layouts, each a run of every variant")
    parser.add_argument('--warm-process', action='store_true',
                        help="pay torch's one-time costs before the memory baseline (a tiny network's step)")
    parser.add_argument('--output', type=Path, help='write the rounds and the machine as JSON')
    parser.add_argument('--one', help=argparse.SUPPRESS)  # a child process: profile this run, print JSON
    parser.add_argument('--layout', choices=LAYOUTS, help=argparse.SUPPRESS)  # the child's layout
    return parser


def runs(arguments: argparse.Namespace) -> list[tuple[str, str, int, str]]:
    """(run name, variant, K, layout) for NNI's DARTS and each variant, one run per K for partial
    channels, per layout."""
    listed = []
    for layout in arguments.layouts:
        suffix = '' if layout == 'default' else f', {layout}'
        listed.append((BASE + suffix, BASE, 0, layout))
        for variant in arguments.variants:
            ks = arguments.k if 'pcdarts' in variant else [0]
            listed += [((f'{variant} k={k}' if k else variant) + suffix, variant, k, layout) for k in ks]
    return listed


def child(arguments: argparse.Namespace, variant: str, k: int, layout: str) -> dict[str, Any]:
    flags = [f'--{name.replace("_", "-")}={getattr(arguments, name)}'
             for name in ('width', 'cells', 'image_size', 'batch', 'skip', 'steps', 'threads')]
    if arguments.warm_process:
        flags.append('--warm-process')
    completed = subprocess.run([sys.executable, __file__, '--one', variant, f'--k={k or 1}', f'--layout={layout}',
                                *flags],
                               capture_output=True, text=True, check=False)
    if completed.returncode:
        sys.exit(f'error: the {variant} run failed:\n{completed.stderr[-3000:]}')
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    arguments = command_line().parse_args()
    if arguments.one:
        arguments.k = arguments.k[0]
        print(json.dumps(profile_one(arguments.one, arguments)))
        return
    rounds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _ in range(arguments.rounds):
        for name, variant, k, layout in runs(arguments):
            rounds[name].append(child(arguments, variant, k, layout))
            print(f'{name}: {rounds[name][-1]["step_ms"]:.1f} ms', file=sys.stderr)
    summary = {name: {'step_ms': statistics.median(r['step_ms'] for r in results),
                      'memory_mb': statistics.median(r['memory_mb'] for r in results),
                      'parts_ms': {part: statistics.median(r['parts_ms'].get(part, 0.0) for r in results)
                                   for part in PARTS}}
               for name, results in rounds.items()}
    base = next(iter(summary.values()))
    ours = summary.get('darts')  # our first-order step, the second base

    def ratios(run: dict[str, Any], to: dict[str, Any] | None) -> str:
        if to is None:
            return '– | –'
        return f'{run["step_ms"] / to["step_ms"]:.2f} | {run["memory_mb"] / to["memory_mb"]:.2f}'

    print(f'# {cpu_name()}, torch {torch.__version__}, {arguments.threads} thread(s); NNI hub DARTS space: '
          f'{arguments.cells} cells x {arguments.width} channels, {arguments.image_size}x{arguments.image_size} '
          f'images, batch {arguments.batch}; medians of {arguments.rounds} rounds of {arguments.steps} steps'
          + ('; memory after a warm-up of the process' if arguments.warm_process else ''))
    print('| run | step ms | memory MB | step ratio | memory ratio | step / darts | memory / darts | '
          + ' | '.join(f'{p} ms' for p in PARTS) + ' |')
    print('|---' * (7 + len(PARTS)) + '|')
    for name, run in summary.items():
        parts = ' | '.join(f'{run["parts_ms"][part]:.1f}' for part in PARTS)
        print(f'| {name} | {run["step_ms"]:.1f} | {run["memory_mb"]:.0f} | {ratios(run, base)} | '
              f'{ratios(run, ours)} | {parts} |')
    if arguments.output:
        arguments.output.write_text(json.dumps({'cpu': cpu_name(), 'torch': torch.__version__,
                                                'arguments': {**vars(arguments), 'output': None, 'one': None},
                                                'summary': summary, 'rounds': rounds}, indent=2))


if __name__ == '__main__':
    main()
