"""A DARTS-style network of NNI ``Cell`` s whose operations come from the registry.

Same structure as NNI's hub DARTS space (stem, normal cells, reduction cells at one and two
thirds of the depth, global pooling, linear classifier), but the input channels, class count
and operation list are parameters, so one space serves grey 8x8 digits and colour CIFAR alike.
All normal cells share the label ``normal`` and all reduction cells ``reduce``: one
architecture per cell type, as in DARTS.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from nni.nas.nn.pytorch import Cell, ModelSpace
from nni.nas.hub.pytorch.nasnet import CellPostprocessor, CellPreprocessor

from .factors import build_operation

PREDECESSORS = 2
"""Each cell reads the outputs of the two cells before it."""

OPS_PER_NODE = 2
"""Each intermediate node sums two operations, each on one chosen input."""


def reduction_positions(cells: int) -> set[int]:
    """Indices of the reduction cells: at one and two thirds of the depth."""
    return {cells // 3, 2 * cells // 3}


def _operation(node_index: int, op_index: int, input_index: int | None, *,
               name: str, channels: int, reduce: bool, affine: bool) -> nn.Module:
    # Edges from the cell inputs of a reduction cell halve the resolution; while the space is
    # unfrozen the input is not known yet (None), and NNI builds it as a cell-input edge.
    from_cell_input = input_index is None or input_index < PREDECESSORS
    stride = 2 if reduce and from_cell_input else 1
    return build_operation(name, channels, stride, affine)


class CellNetwork(ModelSpace):
    """Stem, ``cells`` cells of ``nodes`` nodes each, classifier.

    Parameters
    ----------
    operations
        Names from :data:`~nni_darts_ext.spaces.operations.OPERATIONS`, or combinations
        ``ACTIVATION+CONV`` (:mod:`~nni_darts_ext.spaces.factors`).
    nodes
        Intermediate nodes per cell.
    cells
        Number of cells; two of them (at 1/3 and 2/3) reduce resolution and double width.
    width
        Channels of each operation in the first cells.
    in_channels, num_classes
        From the dataset.
    stem_multiplier
        The stem outputs ``stem_multiplier * width`` channels.
    affine
        Learnable batch-norm scale and shift inside operations (DARTS searches without).
    """

    def __init__(self, operations: list[str], nodes: int = 4, cells: int = 8, width: int = 16,
                 in_channels: int = 3, num_classes: int = 10, stem_multiplier: int = 3,
                 affine: bool = False):
        super().__init__()
        stem_channels = stem_multiplier * width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
        )
        reductions = reduction_positions(cells)
        channels_pprev, channels_prev, channels = stem_channels, stem_channels, width
        last_reduce = False
        self.cells = nn.ModuleList()
        for index in range(cells):
            reduce = index in reductions
            if reduce:
                channels *= 2
            factories = {
                name: partial(_operation, name=name, channels=channels, reduce=reduce, affine=affine)
                for name in operations
            }
            self.cells.append(Cell(
                factories, nodes, OPS_PER_NODE, PREDECESSORS, 'all',
                preprocessor=CellPreprocessor(channels_pprev, channels_prev, channels, last_reduce),
                postprocessor=CellPostprocessor(),
                label='reduce' if reduce else 'normal',
            ))
            channels_pprev, channels_prev = channels_prev, nodes * channels
            last_reduce = reduce
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels_prev, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        previous = current = self.stem(images)
        for cell in self.cells:
            previous, current = cell([previous, current])
        return self.classifier(self.pool(current).flatten(1))
