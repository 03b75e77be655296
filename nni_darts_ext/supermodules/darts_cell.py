"""The supernet cells of this package: NNI's differentiable cell, read through one interface and
derived by the DARTS rule.

NNI's ``DifferentiableMixedCell.export`` ranks a node's candidate (edge, operation) pairs by raw
``alpha``. Raw logits of different edges are not comparable: each edge's softmax has its own
normalizer, the zero operation's logit included, so an edge whose best operation is dominated
by ``none`` can outrank an edge whose best operation holds most of its weight. DARTS (Liu et
al., ICLR 2019) keeps, per node, the incoming edges whose strongest non-zero operation has the
largest *softmax* weight, each with that operation; :class:`DartsCell` exports by that rule.

Every cell of this package is a :class:`DartsCell`; the techniques change what it holds, not how
it is read:

- ``edge_operations``: each edge's candidates by name, the zero operation last while it is one
  (P-DARTS's pruned edges hold fewer);
- :meth:`~DartsCell.operation_weights`: ``softmax(alpha)`` over them (the forward pass weighs
  them by the cells slot's weighing, :mod:`~.weighing`: ``softmax(alpha)`` too unless a technique
  samples);
- :meth:`~DartsCell.edge_weights`: ``softmax(beta)`` over a node's incoming edges with PC-DARTS's
  edge normalization, ones without;
- :meth:`~DartsCell.edge_probabilities`: an edge's differentiable row over all the cell's
  operations and the zero operation (what LA-DARTS's latency encoding reads);
- the derivation (:meth:`~DartsCell.export`), with P-DARTS's limit on skip-connects when set.

Its forward pass computes NNI's (each node the sum over its incoming edges of their operations
weighed by ``softmax(alpha)``), each candidate run once for all of a node's edges
(:func:`~.batched_edges.mix_edges`); with a channels piece (:mod:`~.channels`: PC-DARTS's partial
channels), the piece mixes them.
"""

from __future__ import annotations

from typing import Any

import torch
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell
from torch import nn

from ..architecture import SKIP_CONNECT, edge_ends, edge_label, node_label
from ..nni_internals import architecture_parameters, architecture_weights, normalization
from ..spaces.operations import ZERO_OPERATION
from .batched_edges import mix_edges
from .derivation import EdgeScore
from .channels import Channels
from .supernet_cell import SupernetCell
from .weighing import drawn_index


@architecture_parameters('_arch_beta')  # PC-DARTS's edge normalization, when it has one
class DartsCell(SupernetCell, DifferentiableMixedCell):
    """NNI's differentiable cell (the same edges, parameters and forward pass) with DARTS's derivation;
    the base of every differentiable cell of this package.

    Attributes
    ----------
    edge_operations
        Per edge (``CELL/NODE_SOURCE``), the candidates its vector weighs, the zero operation last
        while it is one.
    channels
        ``None``: every edge's operations see all its channels. Otherwise the piece that builds
        and mixes them (:class:`~.channels.Channels`: PC-DARTS's 1/k of them), and, where it
        weighs edges, each node weighs its incoming edges by ``softmax(beta)``.
    skip_limit
        The most skip-connects the derived cell may hold (P-DARTS's M); ``None``: no limit.
    """

    channels: Channels | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.edge_operations = {edge: [*self.op_names, ZERO_OPERATION] for edge in architecture_weights(self)}
        self._arch_beta = nn.ParameterDict()

    def node_output(self, node: int, inputs: list[torch.Tensor], edges: nn.ModuleList) -> torch.Tensor:
        """The mixture ``node`` computes from ``inputs`` over its incoming ``edges``."""
        vectors, weighing = architecture_weights(self), normalization(self)
        weights = [weighing(vectors[edge_label(self.label, node, source)]) for source in range(node)]
        drawn = [drawn_index(weighing, w) for w in weights]
        candidates = [list(edge.values()) for edge in edges]
        if self.channels is None:
            return mix_edges(inputs, candidates, weights, drawn)
        edge_weights = self.edge_weights(node) if self.channels.weighs_edges else None
        return self.channels.node_output(inputs, candidates, weights, edge_weights, self.label, drawn)

    @property
    def edges(self) -> list[str]:
        """The cell's edges (``CELL/NODE_SOURCE``), each with its architecture vector."""
        return list(self.edge_operations)

    def operation_probabilities(self, edge: str) -> torch.Tensor:
        """``softmax(alpha)`` of ``edge`` over its ``edge_operations`` (differentiable), whatever the
        forward pass weighs by."""
        return architecture_weights(self)[edge].softmax(-1)

    def operation_weights(self, edge: str) -> dict[str, float]:
        """``softmax(alpha)`` of ``edge`` by operation name, the zero operation included."""
        return dict(zip(self.edge_operations[edge], self.operation_probabilities(edge).tolist()))

    def edge_weights(self, node: int) -> torch.Tensor:
        """The weight of each of ``node`` 's incoming edges: ``softmax(beta)`` with edge normalization, else 1."""
        if not self._arch_beta:
            return torch.ones(node)
        return self._arch_beta[node_label(self.label, node)].softmax(-1)

    def edge_probabilities(self, edge: str) -> torch.Tensor:
        """The row of ``edge`` over the cell's operations, then the zero operation (differentiable):
        ``softmax(alpha)``, 0 for the operations it dropped; with edge normalization, weighed by the
        probability the derivation keeps the edge (:func:`expected_edge_row`)."""
        columns = [*self.op_names, ZERO_OPERATION]
        row = self.operation_probabilities(edge)
        if self.edge_operations[edge] != columns:
            kept = torch.tensor([columns.index(op) for op in self.edge_operations[edge]], device=row.device)
            row = row.new_zeros(len(columns)).index_put((kept,), row)
        if not self._arch_beta:
            return row
        return expected_edge_row(row, edge, self.edge_weights, self.num_ops_per_node)

    def export_probs(self, memo):
        """Per edge, its operations' weights (the zero operation left out, as NNI's cell does); with
        edge normalization, per node ``CELL/input_NODE`` the weights of its incoming edges."""
        probabilities: dict[str, dict[Any, float]] = {
            edge: {op: w for op, w in self.operation_weights(edge).items() if op != ZERO_OPERATION}
            for edge in architecture_weights(self) if edge not in memo}
        if self._arch_beta:
            probabilities.update({f'{self.label}/input_{node}': dict(enumerate(self.edge_weights(node).tolist()))
                                  for node in self.output_node_indices if f'{self.label}/input_{node}' not in memo})
        return probabilities

    @torch.no_grad()
    def edge_scores(self, node: int, ruled_out: frozenset[tuple[int, int]] = frozenset()) -> list[EdgeScore]:
        """Per incoming edge: (weight of its best non-zero operation, times the edge's weight with
        edge normalization, source, that operation); a skip-connect on a ``(node, source)`` edge in
        ``ruled_out`` does not count, and an edge left with nothing does not compete."""
        beta = self.edge_weights(node)
        scores = []
        for source in range(node):
            weights = self.operation_weights(edge_label(self.label, node, source))
            candidates = [(w, op) for op, w in weights.items()
                          if op != ZERO_OPERATION and not (op == SKIP_CONNECT and (node, source) in ruled_out)]
            if candidates:
                weight, operation = max(candidates)
                scores.append((weight * float(beta[source]), source, operation))
        # a node whose every edge is a ruled-out skip-connect keeps its skip-connects
        return scores or self.edge_scores(node)


def edge_normalization(label: str, nodes: list[int], memo: dict[str, Any]) -> nn.ParameterDict:
    """One ``beta`` vector per node over its incoming edges (``CELL/NODE``), shared through ``memo``
    by every cell of ``label``."""
    betas = nn.ParameterDict()
    for node in nodes:
        key = node_label(label, node)
        if key + '/edge_beta' not in memo:
            memo[key + '/edge_beta'] = nn.Parameter(torch.randn(node) * 1e-3)
        betas[key] = memo[key + '/edge_beta']
    return betas


def expected_edge_row(row: torch.Tensor, edge: str, edge_weights: Any, slots: int) -> torch.Tensor:
    """The expected encoding of ``edge`` (``CELL/NODE_SOURCE``) of an edge-normalized cell.

    Parameters
    ----------
    row
        The edge's operation probabilities, the zero operation last.
    edge_weights
        ``node -> softmax(beta)`` over the node's incoming edges.
    slots
        The edges a node keeps at derivation.

    Returns
    -------
    torch.Tensor
        ``p * row + (1 - p) * onehot(zero)`` with ``p = min(1, slots * softmax(beta)_edge)``, the
        probability the edge is kept: a dropped edge encodes as the zero operation, as in ``one_hot``.
        A node with no more incoming edges than ``slots`` keeps them all (``p = 1``).
    """
    node, source = edge_ends(edge)
    weights = edge_weights(node)
    if len(weights) <= slots:
        return row
    kept = (slots * weights[source]).clamp(max=1.0)
    zero = torch.zeros_like(row)
    zero[-1] = 1.0
    return kept * row + (1 - kept) * zero
