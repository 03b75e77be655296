"""NNI's differentiable cell, derived by the DARTS rule.

NNI's ``DifferentiableMixedCell.export`` ranks a node's candidate (edge, operation) pairs by raw
``alpha``. Raw logits of different edges are not comparable: each edge's softmax has its own
normalizer, the zero operation's logit included, so an edge whose best operation is dominated
by ``none`` can outrank an edge whose best operation holds most of its weight. DARTS (Liu et
al., ICLR 2019) keeps, per node, the incoming edges whose strongest non-zero operation has the
largest *softmax* weight, each with that operation; :class:`DartsCell` exports by that rule.

Its forward pass computes NNI's (each node the sum over its incoming edges of their operations
weighed by ``softmax(alpha)``), each candidate run once for all of a node's edges
(:func:`~.batched_edges.mix_edges`); with ``k`` set (a subclass's partial channels), each edge mixes
1/K of its channels (:func:`~.partial_channel.partial_channel_node`).
"""

from __future__ import annotations

import torch
from nni.nas.nn.pytorch.cell import preprocess_cell_inputs
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell
from torch import nn

from .batched_edges import mix_edges
from .derivation import EdgeScore, derive_cell
from .partial_channel import partial_channel_node


class DartsCell(DifferentiableMixedCell):
    """NNI's differentiable cell (the same edges, parameters and forward pass) with DARTS's derivation;
    the base of every differentiable cell of this package."""

    k: int | None = None
    """``None``: every edge's operations see all its channels; otherwise 1/k of them (PC-DARTS's
    edges, each holding its ``operations``, and edge normalization by ``edge_weights``)."""

    def forward(self, *inputs):
        processed_inputs = preprocess_cell_inputs(self.num_predecessors, *inputs)
        states = self.preprocessor(processed_inputs)
        for node, edges in zip(self.output_node_indices, self.ops):
            states.append(self.node_output(node, states[:node], edges))
        return self.postprocessor(torch.cat(states[self.num_predecessors:], self.concat_dim), processed_inputs)

    def node_output(self, node: int, inputs: list[torch.Tensor], edges: nn.ModuleList) -> torch.Tensor:
        """The mixture ``node`` computes from ``inputs`` over its incoming ``edges``."""
        weights = [self._softmax(self._arch_alpha[f'{self.label}/{node}_{source}']) for source in range(node)]
        if self.k is None:
            return mix_edges(inputs, [list(edge.values()) for edge in edges], weights)
        return partial_channel_node(inputs, [list(edge.operations.values()) for edge in edges], weights,
                                    self.edge_weights(node), self.k, self.label)

    def edge_weights(self, node: int) -> torch.Tensor:
        """The weight of each of ``node`` 's incoming edges: 1 without edge normalization."""
        return torch.ones(node)

    def edge_probabilities(self, edge: str) -> torch.Tensor:
        """``softmax(alpha)`` of ``edge`` (``CELL/NODE_SOURCE``) over the operations, then the zero
        operation: the row LA-DARTS's latency encoding reads (differentiable)."""
        return self._softmax(self._arch_alpha[edge])

    @torch.no_grad()
    def edge_scores(self, node: int) -> list[EdgeScore]:
        """Per incoming edge: (softmax weight of its best non-zero operation, source, that operation)."""
        scores = []
        for source in range(node):
            # NNI appends the zero operation's logit last: softmax over all, then leave it out
            weights = self._softmax(self._arch_alpha[f'{self.label}/{node}_{source}'])[:len(self.op_names)]
            best = int(weights.argmax())
            scores.append((float(weights[best]), source, self.op_names[best]))
        return scores

    def export(self, memo):
        return derive_cell(self.label, self.output_node_indices, self.num_ops_per_node, memo, self.edge_scores)
