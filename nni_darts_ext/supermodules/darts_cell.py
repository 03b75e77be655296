"""NNI's differentiable cell, derived by the DARTS rule.

NNI's ``DifferentiableMixedCell.export`` ranks a node's candidate (edge, operation) pairs by raw
``alpha``. Raw logits of different edges are not comparable: each edge's softmax has its own
normalizer, the zero operation's logit included, so an edge whose best operation is dominated
by ``none`` can outrank an edge whose best operation holds most of its weight. DARTS (Liu et
al., ICLR 2019) keeps, per node, the incoming edges whose strongest non-zero operation has the
largest *softmax* weight, each with that operation; :class:`DartsCell` exports by that rule.
"""

from __future__ import annotations

import torch
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell

from .derivation import EdgeScore, derive_cell


class DartsCell(DifferentiableMixedCell):
    """NNI's differentiable cell (the same edges, parameters and forward pass) with DARTS's derivation;
    the base of every differentiable cell of this package."""

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
