"""Does a search follow the validation loss? A space whose every choice holds a convolution and its
noisy twin (the same convolution, its output drowned in Gaussian noise), beside a 1x1 convolution
and a pooling: any search that descends the validation loss ranks the twin below the clean one.

Each variant (and each ``eta`` of ``stabilized``) searches the space on digits through NNI's
one-shot engine (``mutate_model``, ``mutate_evaluator``, ``evaluate``), at its own defaults
unless ``--arc-learning-rate`` says otherwise; the result counts the choices where the twin's
probability ends above the clean convolution's.

    python benchmarks/noisy_twin.py --output benchmarks/results/noisy_twin_cpu.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytorch_lightning as pl
import torch
from nni.nas.evaluator.pytorch import Classification, DataLoader
from nni.nas.nn.pytorch import Cell, ModelSpace
from torch import nn

from machine import cpu_name, write_results

CHANNELS = 8
NODES = 3
NOISE_STD = 4.0
"""The noise beside a batch-normalized output of standard deviation about 1: the twin's output is mostly noise."""


def conv(kernel: int) -> nn.Module:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(CHANNELS, CHANNELS, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(CHANNELS, affine=False))


class Noisy(nn.Module):
    """``module`` 's output plus Gaussian noise, in training and in evaluation alike."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return out + NOISE_STD * torch.randn_like(out)


class TwinSpace(ModelSpace):
    """A stem, one NNI ``Cell`` of 3 nodes (6 edges: each node reads the cell's input and the
    nodes before it), a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, CHANNELS, 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS))
        candidates = {'conv_3x3': lambda *_: conv(3), 'noisy_conv_3x3': lambda *_: Noisy(conv(3)),
                      'conv_1x1': lambda *_: conv(1), 'avg_pool_3x3': lambda *_: nn.AvgPool2d(3, 1, 1)}
        self.cell = Cell(candidates, num_nodes=NODES, num_ops_per_node=1, num_predecessors=1, merge_op='all',
                         label='cell')
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(NODES * CHANNELS, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cell(self.stem(x)))


def evaluator(epochs: int, batch: int) -> Classification:
    from nni_darts_ext.data import load_dataset, search_split

    data = load_dataset('digits')
    weights_half, architecture_half = search_split(data.train)
    return Classification(train_dataloaders=DataLoader(weights_half, batch_size=batch, shuffle=True),
                          val_dataloaders=DataLoader(architecture_half, batch_size=batch),
                          num_classes=10, max_epochs=epochs, accelerator='cpu', enable_progress_bar=False,
                          logger=False, enable_checkpointing=False, enable_model_summary=False)


def search(variant: str, options: dict, seed: int, epochs: int, batch: int) -> dict:
    """One search; per choice, the exported probabilities of the clean and the noisy convolution."""
    from nni_darts_ext import make_strategy

    pl.seed_everything(seed, verbose=False)
    strategy = make_strategy(variant, **options)
    supernet = strategy.mutate_model(TwinSpace())
    searched = strategy.mutate_evaluator(evaluator(epochs, batch))
    searched.evaluate(supernet)
    probabilities = searched.module.export_probs()
    choices = {label: {name: round(float(p), 4) for name, p in probabilities[label].items()}
               for label in sorted(probabilities) if 'noisy_conv_3x3' in probabilities[label]}
    return {'variant': variant, 'options': options, 'seed': seed, 'choices': choices,
            'noisy_above_clean': sum(p['noisy_conv_3x3'] > p['conv_3x3'] for p in choices.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+', default=['darts', 'darts2', 'pcdarts', 'ladarts'])
    parser.add_argument('--etas', nargs='+', type=float, default=[0.1, 0.01, 0.001],
                        help="stabilized's eta values, each one search per seed")
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--arc-learning-rate', type=float, help="every search's (default: each variant's own)")
    parser.add_argument('--output', type=Path)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    common = {} if arguments.arc_learning_rate is None else {'arc_learning_rate': arguments.arc_learning_rate}
    # PC-DARTS's warm-up (15 epochs) would outlast the search: its architecture would not move
    searches = [(variant, {'k': 2, 'warmup_epochs': 0} if variant == 'pcdarts' else {}) for variant in arguments.variants]
    searches += [('stabilized', {'eta': eta}) for eta in arguments.etas]
    runs, summary = [], []
    for variant, options in searches:
        found = [search(variant, {**options, **common}, seed, arguments.epochs, arguments.batch)
                 for seed in arguments.seeds]
        runs += found
        name = variant + ''.join(f' {key}={value}' for key, value in options.items())
        above = sum(run['noisy_above_clean'] for run in found)
        choices = sum(len(run['choices']) for run in found)
        summary.append({'search': name, 'noisy_above_clean': above, 'choices': choices})
        print(f'{name}: the noisy twin above the clean convolution in {above} of {choices} choices', flush=True)
    write_results(arguments, cpu_name(), runs=runs, summary=summary)


if __name__ == '__main__':
    main()
