"""What every supernet cell of this package is, whatever its edges hold.

A cell computes each intermediate node from its incoming edges (:meth:`SupernetCell.node_output`),
gives each edge's differentiable row of probabilities over its candidates and the zero operation
(``edges``, ``edge_probabilities``: what architecture terms such as LA-DARTS's latency read,
through :func:`~.probabilities.probability_rows`), and derives by the DARTS rule: each node keeps
its best-scoring incoming edges (``edge_scores``), each with its best non-zero candidate; with
``skip_limit`` set (P-DARTS), while the derived cell holds more skip-connects than that, the
weakest chosen one is ruled out, so its edge falls back to its next-best operation or the node to
its next-best edge. :class:`~.darts_cell.DartsCell` (one vector per edge over its operations) and
:class:`~.factorized.FactorizedCell` (one per factor) are its two families.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from nni.nas.nn.pytorch.cell import preprocess_cell_inputs
from torch import nn

from ..architecture import SKIP_CONNECT, edge_label, input_label, operation_label
from .derivation import EdgeScore, derive_cell


class SupernetCell(ABC):
    """The computation and the derivation every supernet cell shares, over NNI's cell attributes
    (``label``, ``num_predecessors``, ``output_node_indices``, ``num_ops_per_node``, ``ops``,
    ``preprocessor``, ``postprocessor``, ``concat_dim``). A subclass gives ``node_output``,
    ``edge_scores``, ``edges`` (its edges' labels), ``edge_probabilities`` and, with a skip limit,
    ``operation_weights``."""

    skip_limit: int | None = None
    """The most skip-connects the derived cell may hold (P-DARTS's M); ``None``: no limit."""

    def forward(self, *inputs):
        processed_inputs = preprocess_cell_inputs(self.num_predecessors, *inputs)
        states = self.preprocessor(processed_inputs)
        for node, edges in zip(self.output_node_indices, self.ops):
            states.append(self.node_output(node, states[:node], edges))
        return self.postprocessor(torch.cat(states[self.num_predecessors:], self.concat_dim), processed_inputs)

    @abstractmethod
    def node_output(self, node: int, inputs: list[torch.Tensor], edges: nn.ModuleList) -> torch.Tensor:
        """The mixture ``node`` computes from ``inputs`` over its incoming ``edges``."""

    @abstractmethod
    def edge_scores(self, node: int, ruled_out: frozenset[tuple[int, int]] = frozenset()) -> list[EdgeScore]:
        """Per incoming edge: (score of its best non-zero candidate, source, that candidate); a
        skip-connect on a ``(node, source)`` edge in ``ruled_out`` does not count."""

    @abstractmethod
    def edge_probabilities(self, edge: str) -> torch.Tensor:
        """The differentiable row of ``edge`` (``CELL/NODE_SOURCE``) over the cell's candidates
        (``op_names``), then the zero operation."""

    def export(self, memo):
        """Each node's best-scoring incoming edges, each with its best non-zero candidate, within
        ``skip_limit`` skip-connects."""
        ruled_out: frozenset[tuple[int, int]] = frozenset()
        while True:
            exported = derive_cell(self.label, self.output_node_indices, self.num_ops_per_node, memo,
                                   lambda node: self.edge_scores(node, ruled_out))
            if self.skip_limit is None:
                return exported
            chosen = self._chosen_skip_connects(exported)
            replaceable = [edge for edge in chosen if edge not in ruled_out]
            if len(chosen) <= self.skip_limit or not replaceable:
                return exported
            weakest = min(replaceable, key=lambda edge: self.operation_weights(
                edge_label(self.label, *edge))[SKIP_CONNECT])
            ruled_out = ruled_out | {weakest}

    def _chosen_skip_connects(self, exported: dict[str, Any]) -> list[tuple[int, int]]:
        """The ``(node, source)`` edges of ``exported`` that carry a skip-connect."""
        return [(node, exported[input_label(self.label, node, slot)][0])
                for node in self.output_node_indices for slot in range(self.num_ops_per_node)
                if exported.get(operation_label(self.label, node, slot)) == SKIP_CONNECT]
