"""The architecture encoding LA-DARTS's predictors read: per edge of every cell type, a vector
over the candidate operations and, last, the zero operation.

A cell of a DARTS space has an edge ``(node, source)`` from every earlier node to every
intermediate node; the supernet keeps one architecture vector per edge (NNI's
``CELL/NODE_SOURCE``, the zero operation last). A discrete architecture keeps two edges per node:
its encoding is the one-hot vector of the chosen operation on a kept edge and of the zero
operation on every other edge, so it is a vertex of the product of simplices whose interior
points are the supernet's softmaxes (Xu et al., arXiv 2001.06392). A predictor trained on
vertices is then a differentiable function of the architecture parameters.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from nni.nas.nn.pytorch import ModelSpace

from ..errors import ConfigError
from ..supermodules.darts_cell import DartsCell

ZERO = 'none'
"""The zero operation's column (NNI's differentiable cell adds it to every edge)."""

_CELL_CHOICE = re.compile(r'^(?P<cell>.+)/(?P<kind>op|input)_(?P<node>\d+)_(?P<slot>\d+)$')


@dataclass(frozen=True)
class Edge:
    """The edge from node ``source`` to intermediate node ``node`` in cells labelled ``cell``."""
    cell: str
    node: int
    source: int

    @property
    def label(self) -> str:
        """The supernet's label of the edge's architecture vector."""
        return f'{self.cell}/{self.node}_{self.source}'


@dataclass(frozen=True)
class CellEncoding:
    """The encoding of a space built from NNI ``Cell`` s (every cell type, every edge).

    Attributes
    ----------
    edges
        Every edge of every cell type, in a fixed order: the rows of an encoding.
    operations
        The candidate operations, in the cells' order: the columns, then :data:`ZERO`.
    slots
        Operations per intermediate node (two in DARTS).
    """
    edges: tuple[Edge, ...]
    operations: tuple[str, ...]
    slots: int

    @classmethod
    def of(cls, model_space: ModelSpace) -> CellEncoding:
        """Read the cells' edges and operations from the space's choices (``CELL/op_NODE_SLOT``)."""
        nodes: dict[str, set[int]] = {}
        slots: set[int] = set()
        operations: list[tuple[str, ...]] = []
        for label, mutable in model_space.simplify().items():
            match = _CELL_CHOICE.match(label)
            if match is None:
                raise ConfigError(f'LA-DARTS encodes spaces built from NNI Cells only; {label!r} is a choice '
                                  'outside a cell')
            nodes.setdefault(match['cell'], set()).add(int(match['node']))
            slots.add(int(match['slot']))
            if match['kind'] == 'op':
                operations.append(tuple(mutable.values))
        if not operations or len(set(operations)) != 1:
            raise ConfigError('LA-DARTS needs cells whose every operation slot has the same candidates')
        edges = tuple(Edge(cell, node, source) for cell in sorted(nodes) for node in sorted(nodes[cell])
                      for source in range(node))
        return cls(edges, operations[0], len(slots))

    @property
    def shape(self) -> tuple[int, int]:
        """``(edges, operations + 1)``."""
        return len(self.edges), len(self.operations) + 1

    def one_hot(self, architecture: dict[str, Any]) -> Tensor:
        """The vertex encoding of a discrete architecture (as ``export`` gives it)."""
        rows = {edge: index for index, edge in enumerate(self.edges)}
        encoding = torch.zeros(self.shape)
        encoding[:, -1] = 1.0
        for edge in self.edges:
            for slot in range(self.slots):
                if f'{edge.cell}/op_{edge.node}_{slot}' not in architecture:
                    continue
                source = architecture[f'{edge.cell}/input_{edge.node}_{slot}'][0]
                if source == edge.source:
                    row = rows[edge]
                    encoding[row, -1] = 0.0
                    encoding[row, self.operations.index(architecture[f'{edge.cell}/op_{edge.node}_{slot}'])] += 1.0
        return encoding

    def sample(self, generator: random.Random) -> dict[str, Any]:
        """A uniformly random architecture in ``export`` 's form: each node's slots on distinct inputs
        (as DARTS derives them), each slot's operation uniform."""
        architecture: dict[str, Any] = {}
        for cell in sorted({edge.cell for edge in self.edges}):
            for node in sorted({edge.node for edge in self.edges if edge.cell == cell}):
                sources = generator.sample(range(node), min(self.slots, node))
                for slot in range(self.slots):
                    architecture[f'{cell}/op_{node}_{slot}'] = generator.choice(self.operations)
                    architecture[f'{cell}/input_{node}_{slot}'] = [sources[slot % len(sources)]]
        return architecture

    def probabilities(self, supernet: nn.Module) -> Tensor:
        """The supernet's expected encoding, one row per edge: differentiable in the architecture parameters.

        An edge's row is ``softmax(alpha)``; in a cell with edge normalization (PC-DARTS), where
        ``softmax(beta)`` decides which edges a node keeps, it is ``p * softmax(alpha) + (1 - p) *
        onehot(none)`` with ``p = min(1, slots * softmax(beta)_edge)`` the probability the edge is kept.
        """
        rows: dict[str, Tensor] = {}
        for module in supernet.modules():
            if isinstance(module, DartsCell):
                if tuple(module.op_names) != self.operations:
                    raise ConfigError(f'cell {module.label!r} has operations {module.op_names}, the encoding '
                                      f'{list(self.operations)}')
                for label in module._arch_alpha:
                    # each cell gives its own rows (P-DARTS's surviving operations, PC-DARTS's kept edges)
                    rows.setdefault(label, module.edge_probabilities(label))
        missing = [edge.label for edge in self.edges if edge.label not in rows]
        if missing:
            raise ConfigError(f'the supernet has no architecture vector for edge {missing[0]!r} (LA-DARTS reads '
                              "the differentiable cells of this package's strategies)")
        return torch.stack([rows[edge.label] for edge in self.edges])
