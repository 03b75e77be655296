"""A DARTS-style network of NNI ``Cell`` s whose operations come from the registry.

Same structure as NNI's hub DARTS space (stem, normal cells, reduction cells at one and two
thirds of the depth, global pooling, linear classifier), but the input channels, class count
and operation list are parameters, so one space serves grey 8x8 digits and colour CIFAR alike.
All normal cells share the label ``normal`` and all reduction cells ``reduce``: one
architecture per cell type, as in DARTS.

Built with ``affine=False`` it is the search network of DARTS, P-DARTS and PC-DARTS
(``model_search.py``): batch norms inside the cells (preprocessing and candidates) have no
learnable scale and shift, and every pooling candidate is followed by a batch norm, so that its
output is on the scale of the convolutions', which all end in one. With ``affine=True`` it is
their evaluation network (``model.py``): plain pooling, affine batch norms.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from nni.nas.nn.pytorch import Cell, ModelSpace
from nni.nas.hub.pytorch.nasnet import CellPostprocessor, FactorizedReduce, ReLUConvBN

from .factors import build_operation

PREDECESSORS = 2
"""Each cell reads the outputs of the two cells before it."""

OPS_PER_NODE = 2
"""Each intermediate node sums two operations, each on one chosen input."""

POOLING = (nn.MaxPool2d, nn.AvgPool2d)
"""Candidate modules that the search network follows with a batch norm."""


def reduction_positions(cells: int) -> set[int]:
    """Indices of the reduction cells: at one and two thirds of the depth."""
    return {cells // 3, 2 * cells // 3}


def _operation(node_index: int, op_index: int, input_index: int | None, *,
               name: str, channels: int, reduce: bool, affine: bool) -> nn.Module:
    # Edges from the cell inputs of a reduction cell halve the resolution; while the space is
    # unfrozen the input is not known yet (None), and NNI builds it as a cell-input edge.
    from_cell_input = input_index is None or input_index < PREDECESSORS
    stride = 2 if reduce and from_cell_input else 1
    operation = build_operation(name, channels, stride, affine)
    if not affine and isinstance(operation, POOLING):
        # the papers' search form: pooling normalized (without affine parameters) like the convolutions
        return nn.Sequential(operation, nn.BatchNorm2d(channels, affine=False))
    return operation


class Preprocessor(nn.Module):
    """Brings a cell's two inputs to ``channels`` channels at the cell's resolution.

    NNI's ``CellPreprocessor`` with the batch norms' ``affine`` as a parameter: a 1x1
    ReLU-conv-BN on the previous cell's output; on the one before it, the same, or a
    factorized reduction when the previous cell halved the resolution.
    """

    def __init__(self, channels_pprev: int, channels_prev: int, channels: int, last_reduce: bool, affine: bool):
        super().__init__()
        self.pre0 = (FactorizedReduce(channels_pprev, channels, affine=affine) if last_reduce
                     else ReLUConvBN(channels_pprev, channels, 1, 1, 0, affine=affine))
        self.pre1 = ReLUConvBN(channels_prev, channels, 1, 1, 0, affine=affine)

    def forward(self, cells: list[torch.Tensor]) -> list[torch.Tensor]:
        pprev, prev = cells
        return [self.pre0(pprev), self.pre1(prev)]


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
        ``False``: the papers' search form (cells' batch norms without learnable scale and
        shift, each pooling candidate followed by ``BatchNorm2d(affine=False)``). ``True``:
        the evaluation form (affine batch norms, plain pooling). The stem's batch norm is
        affine in both, as in DARTS.
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
                preprocessor=Preprocessor(channels_pprev, channels_prev, channels, last_reduce, affine),
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
