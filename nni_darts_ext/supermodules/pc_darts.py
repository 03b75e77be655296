"""PC-DARTS supernet modules: partial-channel edges with edge normalization.

:class:`PartialChannelCell` replaces an NNI ``Cell``: each edge mixes its operations on 1/K of
the channels, and each node weighs its incoming edges with ``softmax(beta)`` (edge
normalization), one ``beta`` vector per node, learned with the operation weights ``alpha``.
At derivation an edge scores ``max over non-zero operations of softmax(alpha) x softmax(beta)``;
each node keeps its best-scoring inputs, each with its best non-zero operation
(:class:`~.darts_cell.DartsCell`, which reads every cell of this package).
:class:`PartialChannelLayer` applies the partial-channel mixture to a free-standing
``LayerChoice`` (NAS-Bench-201's edges, a user's own space).
"""

from __future__ import annotations

import torch
from torch import nn
from nni.nas.nn.pytorch import Cell, LayerChoice
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer

from ..architecture import edge_label
from .darts_cell import DartsCell, edge_normalization
from .partial_channel import SplitsChannels, build_for_channel_fraction, partial_channel_mix
from .weighing import layer_weights


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
    """NNI's differentiable cell with partial-channel edges and edge normalization (read and derived
    as every :class:`~.darts_cell.DartsCell`)."""

    def __init__(self, op_factory, num_nodes, num_ops_per_node, num_predecessors, preprocessor, postprocessor,
                 concat_dim, memo, mutate_kwargs, label, *, k: int):
        super().__init__(op_factory, num_nodes, num_ops_per_node, num_predecessors, preprocessor, postprocessor,
                         concat_dim, memo, mutate_kwargs, label)
        for node, node_edges in zip(self.output_node_indices, self.ops):
            for source, operations in enumerate(node_edges):
                node_edges[source] = PartialChannelEdge(operations, k, edge_label(self.label, node, source))
        self.k = k
        self._arch_beta = edge_normalization(self.label, self.output_node_indices, memo)

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs, *, k: int):
        if type(module) is Cell and module.op_candidates_factory is not None:
            return cls(module.op_candidates_factory, module.num_nodes, module.num_ops_per_node,
                       module.num_predecessors, module.preprocessor, module.postprocessor, module.concat_dim,
                       memo, mutate_kwargs, module.label, k=k)
        return None


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
        weights, chosen = layer_weights(self)
        return partial_channel_mix(x, operations, weights, self.k, self.label, chosen)
