"""Model spaces an NNI user writes by hand, one of each kind of choice, and a one-step search on them.

Every space takes 8x8 one-channel images (digits) and has 10 outputs. :func:`search_once` runs a
strategy as ``NasExperiment``'s one-shot engine does (``mutate_model``, ``mutate_evaluator``,
``evaluate``, ``export``), for one training step, and freezes the exported architecture on the space.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from nni.nas.evaluator.pytorch import Classification, DataLoader
from nni.nas.nn.pytorch import Cell, InputChoice, LayerChoice, ModelSpace, Repeat
from nni.nas.oneshot.pytorch.strategy import OneShotStrategy
from nni.nas.strategy import Strategy

from nni_darts_ext.data import load_dataset, search_split

CHANNELS = 4


def conv(kernel: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(CHANNELS, CHANNELS, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(CHANNELS), nn.ReLU())


def head() -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(CHANNELS, 10))


def stem() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, CHANNELS, 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS))


class ListChoices(ModelSpace):
    """A chain of ``LayerChoice`` s given lists (NNI names the candidates 0, 1, ...)."""

    def __init__(self):
        super().__init__()
        self.stem = stem()
        self.first = LayerChoice([conv(3), conv(1), nn.MaxPool2d(3, 1, 1)], label='first')
        self.second = LayerChoice([conv(3), nn.Identity()], label='second')
        self.head = head()

    def forward(self, x):
        return self.head(self.second(self.first(self.stem(x))))


class DictChoices(ModelSpace):
    """A chain of ``LayerChoice`` s given dicts of named candidates."""

    def __init__(self):
        super().__init__()
        self.stem = stem()
        self.first = LayerChoice({'conv3x3': conv(3), 'conv1x1': conv(1), 'max_pool': nn.MaxPool2d(3, 1, 1)},
                                 label='first')
        self.second = LayerChoice({'conv3x3': conv(3), 'skip': nn.Identity()}, label='second')
        self.head = head()

    def forward(self, x):
        return self.head(self.second(self.first(self.stem(x))))


class InputChoices(ModelSpace):
    """Three branches and an ``InputChoice`` of ``n_chosen`` of them, after a dict ``LayerChoice``."""

    def __init__(self, n_chosen: int = 1):
        super().__init__()
        self.stem = stem()
        self.branches = nn.ModuleList([conv(3), conv(1), nn.AvgPool2d(3, 1, 1)])
        self.choose = InputChoice(3, n_chosen=n_chosen, reduction='sum', label='branch')
        self.after = LayerChoice({'conv3x3': conv(3), 'skip': nn.Identity()}, label='after')
        self.head = head()

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.after(self.choose([branch(x) for branch in self.branches])))


class CellSpace(ModelSpace):
    """One NNI ``Cell`` of 3 nodes, 1 operation each, with ``merge_op`` ``all`` or ``loose_end``."""

    def __init__(self, merge_op: str = 'all'):
        super().__init__()
        self.stem = stem()
        operations = {'conv3x3': lambda node, op, source: conv(3), 'conv1x1': lambda node, op, source: conv(1),
                      'skip': lambda node, op, source: nn.Identity()}
        self.cell = Cell(operations, num_nodes=3, num_ops_per_node=1, num_predecessors=1, merge_op=merge_op,
                         label='cell')
        self.merge_op = merge_op
        self.project = nn.LazyConv2d(CHANNELS, 1) if merge_op == 'loose_end' else nn.Conv2d(3 * CHANNELS, CHANNELS, 1)
        self.head = head()

    def forward(self, x):
        return self.head(self.project(self.cell(self.stem(x))))


class Repeated(ModelSpace):
    """A block with a ``LayerChoice``, repeated 1 to 3 times (``Repeat``)."""

    def __init__(self):
        super().__init__()
        self.stem = stem()
        self.blocks = Repeat(lambda index: LayerChoice({'conv3x3': conv(3), 'conv1x1': conv(1)},
                                                       label=f'block{index}'), (1, 3), label='depth')
        self.head = head()

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class Nested(ModelSpace):
    """A ``LayerChoice`` whose candidate holds another ``LayerChoice``."""

    def __init__(self):
        super().__init__()
        self.stem = stem()
        inner = LayerChoice({'conv3x3': conv(3), 'conv1x1': conv(1)}, label='inner')
        self.outer = LayerChoice({'nested': nn.Sequential(inner, nn.ReLU()), 'skip': nn.Identity()}, label='outer')
        self.head = head()

    def forward(self, x):
        return self.head(self.outer(self.stem(x)))


USER_SPACES: dict[str, Callable[[], ModelSpace]] = {
    'list LayerChoice': ListChoices, 'dict LayerChoice': DictChoices,
    'InputChoice n_chosen=1': lambda: InputChoices(1), 'InputChoice n_chosen=2': lambda: InputChoices(2),
    "Cell merge_op='all'": lambda: CellSpace('all'), "Cell merge_op='loose_end'": lambda: CellSpace('loose_end'),
    'Repeat': Repeated, 'nested LayerChoice': Nested,
}


def tiny_evaluator(max_epochs: int = 1, batches: int | None = 1) -> Classification:
    """NNI's classification evaluator on 64 digits, batch 16; ``batches`` training steps per epoch."""
    data = load_dataset('digits', train_subset=64)
    weights_half, architecture_half = search_split(data.train)
    return Classification(train_dataloaders=DataLoader(weights_half, batch_size=16, shuffle=True),
                          val_dataloaders=DataLoader(architecture_half, batch_size=16),
                          num_classes=10, max_epochs=max_epochs, limit_train_batches=batches,
                          limit_val_batches=batches, accelerator='cpu', enable_progress_bar=False,
                          logger=False, enable_checkpointing=False, enable_model_summary=False)


def search_once(strategy: Strategy, build: Callable[[], ModelSpace],
                evaluator: Classification | None = None, image_shape: tuple[int, ...] = (1, 8, 8)) -> dict[str, Any]:
    """One search step of ``strategy`` on the space ``build`` makes; the exported architecture, checked by
    freezing it on a fresh copy of the space (NNI turns the searched one into the supernet in place) and
    running the frozen network on a batch of ``image_shape`` images."""
    if isinstance(strategy, OneShotStrategy):
        supernet = strategy.mutate_model(build())
        search = strategy.mutate_evaluator(evaluator or tiny_evaluator())
        search.evaluate(supernet)
        architecture = search.module.export()
    else:
        architecture = strategy.sample(build())
    frozen = build().freeze(architecture)
    assert frozen(torch.zeros(2, *image_shape)).shape == (2, 10)
    return architecture


def part(strategy: Any, kind: type) -> Any:
    """The technique of class ``kind`` among ``strategy`` 's parts."""
    [found] = [technique for technique in strategy.parts if isinstance(technique, kind)]
    return found
