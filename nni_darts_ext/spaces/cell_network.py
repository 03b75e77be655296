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
their evaluation network (``model.py``): plain pooling, affine batch norms, and optionally
their retraining's drop-path and auxiliary head (NNI's ``DropPath`` and ``AuxiliaryHead``, as
in NNI's hub DARTS space).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from nni.nas.nn.pytorch import Cell, ModelSpace
from nni.nas.hub.pytorch.nasnet import AuxiliaryHead, CellPostprocessor, FactorizedReduce, ReLUConvBN
from nni.nas.hub.pytorch.utils.nn import DropPath

from ..errors import ConfigError
from .factors import build_operation

PREDECESSORS = 2
"""Each cell reads the outputs of the two cells before it."""

OPS_PER_NODE = 2
"""Each intermediate node sums two operations, each on one chosen input."""

POOLING = (nn.MaxPool2d, nn.AvgPool2d)
"""Candidate modules that the search network follows with a batch norm."""


AUXILIARY_SIDES = range(8, 11)
"""Feature-map sides the auxiliary head (DARTS's CIFAR head) reads: a 5x5 average pooling of
stride 3 makes them 2x2, which its 2x2 convolution makes one pixel."""


def reduction_positions(cells: int) -> set[int]:
    """Indices of the reduction cells: at one and two thirds of the depth."""
    return {cells // 3, 2 * cells // 3}


def auxiliary_position(cells: int) -> int:
    """Index of the cell the auxiliary head reads (DARTS: the reduction cell at 2/3 depth)."""
    return 2 * cells // 3


def check_auxiliary_head(cells: int, image_size: int) -> None:
    """Refuse an auxiliary head on a network whose feature map at 2/3 depth it cannot read
    (the same in NNI's hub cell spaces, whose stages start at the same cells)."""
    side = image_size
    for position in reduction_positions(cells):
        if position <= auxiliary_position(cells):
            side = -(-side // 2)  # every stride-2 candidate rounds up
    if side not in AUXILIARY_SIDES:
        raise ConfigError(f'retrain_auxiliary_weight: the auxiliary head reads an 8x8 to 10x10 feature map at 2/3 '
                          f'depth; {image_size}-pixel images give {side}x{side} there (CIFAR\'s 32 give 8x8): '
                          'set image_size accordingly, or retrain_auxiliary_weight to 0')


def _operation(node_index: int, op_index: int, input_index: int | None, *,
               name: str, channels: int, reduce: bool, affine: bool, drop_path: float) -> nn.Module:
    # Edges from the cell inputs of a reduction cell halve the resolution; while the space is
    # unfrozen the input is not known yet (None), and NNI builds it as a cell-input edge.
    from_cell_input = input_index is None or input_index < PREDECESSORS
    stride = 2 if reduce and from_cell_input else 1
    operation = build_operation(name, channels, stride, affine)
    if not affine and isinstance(operation, POOLING):
        # the papers' search form: pooling normalized (without affine parameters) like the convolutions
        return nn.Sequential(operation, nn.BatchNorm2d(channels, affine=False))
    if drop_path > 0 and not isinstance(operation, nn.Identity):  # DARTS never drops an identity
        return nn.Sequential(operation, DropPath(drop_path))
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
    drop_path
        Above 0: NNI's ``DropPath`` at this rate after every operation but the identity
        (changed during training by :class:`~nni_darts_ext.training.DropPathSchedule`).
    auxiliary_head
        ``True``: NNI's ``AuxiliaryHead`` on the cell at 2/3 depth, and the training forward
        returns ``(logits, auxiliary logits)``.
    """

    def __init__(self, operations: list[str], nodes: int = 4, cells: int = 8, width: int = 16,
                 in_channels: int = 3, num_classes: int = 10, stem_multiplier: int = 3,
                 affine: bool = False, drop_path: float = 0.0, auxiliary_head: bool = False):
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
                name: partial(_operation, name=name, channels=channels, reduce=reduce, affine=affine,
                              drop_path=drop_path)
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
            if auxiliary_head and index == auxiliary_position(cells):
                self.auxiliary_head = AuxiliaryHead(channels_prev, num_classes, 'cifar')
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels_prev, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        auxiliary = self.training and hasattr(self, 'auxiliary_head')
        previous = current = self.stem(images)
        for index, cell in enumerate(self.cells):
            previous, current = cell([previous, current])
            if auxiliary and index == auxiliary_position(len(self.cells)):
                auxiliary_logits = self.auxiliary_head(current)
        logits = self.classifier(self.pool(current).flatten(1))
        return (logits, auxiliary_logits) if auxiliary else logits
