"""PC-DARTS supernet modules: partial-channel edges with edge normalization.

:class:`PartialChannelCell` replaces an NNI ``Cell``: each edge mixes its operations on 1/K of
the channels, and each node weighs its incoming edges with ``softmax(beta)`` (edge
normalization), one ``beta`` vector per node, learned with the operation weights ``alpha``.
At derivation an edge scores ``max over non-zero operations of softmax(alpha) x softmax(beta)``;
each node keeps its best-scoring inputs, each with its best non-zero operation.
LA-DARTS's latency encoding reads each edge as its expected encoding, ``softmax(alpha)`` weighed
by the probability that ``softmax(beta)`` keeps the edge (:func:`expected_edge_row`).
:class:`PartialChannelLayer` applies the partial-channel mixture to a free-standing
``LayerChoice`` (NAS-Bench-201's edges, a user's own space).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn
from nni.nas.nn.pytorch import Cell, LayerChoice
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer

from .darts_cell import DartsCell
from .derivation import derive_cell
from .partial_channel import SplitsChannels, build_for_channel_fraction, partial_channel_mix


def edge_normalization(label: str, nodes: Iterable[int], memo: dict[str, Any]) -> nn.ParameterDict:
    """One ``beta`` vector per node over its incoming edges (``CELL/NODE``), shared through ``memo``
    by every cell of ``label``."""
    betas = nn.ParameterDict()
    for node in nodes:
        key = f'{label}/{node}'
        if key + '/edge_beta' not in memo:
            memo[key + '/edge_beta'] = nn.Parameter(torch.randn(node) * 1e-3)
        betas[key] = memo[key + '/edge_beta']
    return betas


def expected_edge_row(row: torch.Tensor, edge: str, edge_weights: Callable[[int], torch.Tensor],
                      slots: int) -> torch.Tensor:
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
    node, source = map(int, edge.rsplit('/', 1)[1].split('_'))
    weights = edge_weights(node)
    if len(weights) <= slots:
        return row
    kept = (slots * weights[source]).clamp(max=1.0)
    zero = torch.zeros_like(row)
    zero[-1] = 1.0
    return kept * row + (1 - kept) * zero


def input_probabilities(cell: DartsCell, memo: dict[str, Any]) -> dict[str, dict[int, float]]:
    """``softmax(beta)`` of each node of an edge-normalized ``cell`` not yet in ``memo``, as ``export_probs`` gives it."""
    return {f'{cell.label}/input_{node}': dict(enumerate(cell.edge_weights(node).tolist()))
            for node in cell.output_node_indices if f'{cell.label}/input_{node}' not in memo}


class PartialChannelEdge(SplitsChannels, nn.Module):
    """One cell edge: its candidate operations, built for 1/``k`` of the channels (the cell mixes
    them: :func:`~.partial_channel.partial_channel_node`)."""

    def __init__(self, operations: nn.ModuleDict, k: int, label: str):
        super().__init__()
        self.k = k
        self.label = label
        self.operations = nn.ModuleDict({name: build_for_channel_fraction(op, k, f'{label}/{name}')
                                         for name, op in operations.items()})


class PartialChannelCell(DartsCell):
    """NNI's differentiable cell with partial-channel edges and edge normalization."""

    _arch_parameter_names: list[str] = ['_arch_alpha', '_arch_beta']

    def __init__(self, op_factory, num_nodes, num_ops_per_node, num_predecessors, preprocessor, postprocessor,
                 concat_dim, memo, mutate_kwargs, label, *, k: int):
        super().__init__(op_factory, num_nodes, num_ops_per_node, num_predecessors, preprocessor, postprocessor,
                         concat_dim, memo, mutate_kwargs, label)
        for node, node_edges in zip(self.output_node_indices, self.ops):
            for source, operations in enumerate(node_edges):
                node_edges[source] = PartialChannelEdge(operations, k, f'{self.label}/{node}_{source}')
        self.k = k
        self._arch_beta = edge_normalization(self.label, self.output_node_indices, memo)

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs, *, k: int):
        if type(module) is Cell and module.op_candidates_factory is not None:
            return cls(module.op_candidates_factory, module.num_nodes, module.num_ops_per_node,
                       module.num_predecessors, module.preprocessor, module.postprocessor, module.concat_dim,
                       memo, mutate_kwargs, module.label, k=k)
        return None

    def edge_weights(self, node: int) -> torch.Tensor:
        """softmax(beta) over the node's incoming edges."""
        return self._softmax(self._arch_beta[f'{self.label}/{node}'])

    def edge_probabilities(self, edge: str) -> torch.Tensor:
        """The expected encoding of ``edge`` (``CELL/NODE_SOURCE``) over the operations, then the zero
        operation: ``softmax(alpha)`` weighed by the probability the edge is kept
        (:func:`expected_edge_row`), the row LA-DARTS's latency encoding reads (differentiable)."""
        return expected_edge_row(self._softmax(self._arch_alpha[edge]), edge, self.edge_weights,
                                 self.num_ops_per_node)

    def operation_weights(self, node: int, source: int) -> torch.Tensor:
        """softmax(alpha) over the edge's operations, the zero operation last."""
        return self._softmax(self._arch_alpha[f'{self.label}/{node}_{source}'])

    def export_probs(self, memo):
        return {**super().export_probs(memo), **input_probabilities(self, memo)}

    @torch.no_grad()
    def edge_scores(self, node: int) -> list[tuple[float, int, str]]:
        """Per incoming edge: (best non-zero operation weight x edge weight, source, that operation)."""
        beta = self.edge_weights(node)
        scores = []
        for source in range(node):
            alpha = self.operation_weights(node, source)[:len(self.op_names)]  # drop the zero operation
            best = int(alpha.argmax())
            scores.append((float(alpha[best] * beta[source]), source, self.op_names[best]))
        return scores

    def export(self, memo):
        return derive_cell(self.label, self.output_node_indices, self.num_ops_per_node, memo, self.edge_scores)


def candidates_for_channel_fraction(candidates: list[nn.Module] | dict[str, nn.Module], k: int,
                                    label: str) -> list[nn.Module] | dict[str, nn.Module]:
    """A ``LayerChoice`` 's ``candidates`` rebuilt for 1/``k`` of the channels, in the same form: a list
    stays a list, so that NNI names the rebuilt candidates 0, 1, ... as it named the user's."""
    if isinstance(candidates, dict):
        return {name: build_for_channel_fraction(op, k, f'{label}/{name}') for name, op in candidates.items()}
    return [build_for_channel_fraction(op, k, f'{label}/{index}') for index, op in enumerate(candidates)]


class PartialChannelLayer(SplitsChannels, DifferentiableMixedLayer):
    """A ``LayerChoice`` whose candidates see 1/``k`` of the channels.

    ``paths`` is a ``LayerChoice`` 's ``candidates``, a list or a dict: the supernet keeps the user's
    candidate names (the list's indices), which the exported architecture then holds.
    """

    def __init__(self, paths, alpha, softmax, label, *, k: int):
        super().__init__(candidates_for_channel_fraction(paths, k, label), alpha, softmax, label)
        self.k = k

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs, *, k: int):
        if type(module) is LayerChoice:
            softmax = mutate_kwargs.get('softmax', nn.Softmax(-1))
            return cls(module.candidates, memo[module.label], softmax, module.label, k=k)
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        operations = [self[name] for name in self.names]
        return partial_channel_mix(x, operations, self._softmax(self._arch_alpha), self.k, self.label)
