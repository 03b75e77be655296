"""P-DARTS's supernet modules: each mixed operation holds only the candidates that survived earlier stages.

After every stage, P-DARTS keeps in each mixed operation the candidates with the highest weights and
drops the rest, so a deeper network fits in the same memory. :class:`ProgressiveCell`
replaces an NNI ``Cell`` with edges that hold just their surviving operations (a dropped
operation is never even built) and one architecture vector each over those operations,
the zero operation included while it survives. :class:`ProgressiveLayer` does the same for a
``LayerChoice`` outside a cell (a user's own space): it mixes its surviving candidates, under the
user's names, with one architecture vector over them. Identity skip-connects (in a cell, and any
``nn.Identity`` candidate of a free ``LayerChoice``) are followed by a dropout whose rate the
strategy sets every epoch (:class:`SkipConnectDropout`); a stride-2 skip-connect (a
``FactorizedReduce``, which has weights) is left as it is. With ``k``, both take PC-DARTS's technique
too (``pdarts+pcdarts``): each mixed operation mixes its surviving candidates on 1/K of the channels,
and each cell node weighs its incoming edges with learned ``softmax(beta)``.

A cell derives by DARTS's rule (each node keeps its best-scoring incoming edges, each with its best
non-zero operation) with P-DARTS's limit on skip-connects in the normal cell: while it
holds more than ``skip_limit``, the weakest chosen skip-connect is ruled out, so its edge
falls back to its next-best operation or the node to its next-best edge. A free ``LayerChoice``
exports its strongest surviving candidate.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from nni.nas.nn.pytorch import Cell, LayerChoice
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer

from ..architecture import SKIP_CONNECT, edge_label
from ..nni_internals import init_as_layer_choice, init_as_sampling_cell, probabilities, set_architecture_weights
from ..spaces.operations import ZERO_OPERATION
from .darts_cell import DartsCell, edge_normalization
from .partial_channel import SplitsChannels, build_for_channel_fraction, partial_channel_mix
from .pc_darts import PartialChannelEdge
from .weighing import layer_weights, mixed_layer_output

SurvivingOperations = Mapping[str, tuple[Any, ...]]
"""Mixed operation -> the candidates it keeps: a cell edge (``CELL/NODE_SOURCE``) -> its operations,
``none`` (the zero operation) among them while it survives; a free ``LayerChoice`` 's label -> its
candidates' names (a list's indices). One not listed keeps every candidate (an edge, the zero operation too)."""


class SkipConnectDropout(nn.Module):
    """An identity skip-connect followed by dropout, at a rate ``p`` the search schedule sets
    (P-DARTS's regularization); it stands in for the ``nn.Identity`` it replaces."""

    def __init__(self):
        super().__init__()
        self.p = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training)


def _restricted(op_factory: Any, label: str, surviving: SurvivingOperations) -> dict[str, Any]:
    """``op_factory`` as a dict of factories that build a dropped operation as a weightless
    ``nn.Identity`` (discarded right after), so the cell's constructor never allocates its weights."""
    candidates = op_factory if isinstance(op_factory, dict) else dict(enumerate(op_factory))

    def factory(name: str, candidate: Any):
        def build(node: int, op_index: int, source: int) -> nn.Module:
            edge = edge_label(label, node, source)
            if edge in surviving and name not in surviving[edge]:
                return nn.Identity()
            if isinstance(candidate, nn.Module):  # as NNI does with a module: a copy per edge
                return copy.deepcopy(candidate)
            return candidate(node, op_index, source)
        return build

    return {str(name): factory(str(name), candidate) for name, candidate in candidates.items()}


class OperationsEdge(nn.ModuleDict):
    """One edge's surviving operations, mixed on all channels (the zero operation, when it survives,
    has a weight and no module)."""


class ProgressiveCell(DartsCell):
    """A differentiable cell whose edges mix only their surviving operations (read and derived as
    every :class:`~.darts_cell.DartsCell`, its skip-connects limited).

    Parameters
    ----------
    surviving
        Per edge, the operations it keeps (see :data:`SurvivingOperations`); empty: all of them.
    skip_limit
        The most skip-connects the derived cell may hold (``None``: no limit).
    k
        ``None``: every edge sees all channels. Otherwise PC-DARTS's partial channels (1/k of
        them through the operations) and edge normalization.
    """

    def __init__(self, op_factory, num_nodes, num_ops_per_node, num_predecessors, preprocessor, postprocessor,
                 concat_dim, memo, mutate_kwargs, label, *, surviving: SurvivingOperations,
                 skip_limit: int | None, k: int | None = None):
        # NNI's differentiable cell would give every edge the same operations and a vector over
        # all of them: build the edges through the sampling cell and the vectors here instead.
        init_as_sampling_cell(self, _restricted(op_factory, label, surviving), num_nodes, num_ops_per_node,
                              num_predecessors, preprocessor, postprocessor, concat_dim, memo, mutate_kwargs, label)
        self.skip_limit = skip_limit
        self.edge_operations: dict[str, list[str]] = {}
        vectors = nn.ParameterDict()
        for node, node_edges in zip(self.output_node_indices, self.ops):
            for source, operations in enumerate(node_edges):
                edge = edge_label(self.label, node, source)
                kept = surviving.get(edge, (*self.op_names, ZERO_OPERATION))
                # P-DARTS's placement: dropout after identity skip-connects, not a stride-2 one (FactorizedReduce)
                edge_module = OperationsEdge({
                    name: SkipConnectDropout() if name == SKIP_CONNECT and isinstance(op, nn.Identity) else op
                    for name, op in operations.items() if name in kept})
                zero = [ZERO_OPERATION] if ZERO_OPERATION in kept else []
                self.edge_operations[edge] = [*edge_module, *zero]
                node_edges[source] = edge_module if k is None else PartialChannelEdge(edge_module, k, edge)
                if edge + '/in_cell' not in memo:  # shared by every cell with this label
                    memo[edge + '/in_cell'] = nn.Parameter(torch.randn(len(self.edge_operations[edge])) * 1e-3)
                vectors[edge] = memo[edge + '/in_cell']
        set_architecture_weights(self, vectors, mutate_kwargs.get('softmax', nn.Softmax(-1)))
        self.k = k
        self._arch_beta = nn.ParameterDict() if k is None else edge_normalization(label, self.output_node_indices, memo)

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs, *, surviving: SurvivingOperations, skip_limit: int | None,
               k: int | None = None):
        if type(module) is Cell and module.op_candidates_factory is not None:
            # P-DARTS limits the skip-connects of normal cells only
            limit = None if 'reduce' in module.label else skip_limit
            return cls(module.op_candidates_factory, module.num_nodes, module.num_ops_per_node,
                       module.num_predecessors, module.preprocessor, module.postprocessor, module.concat_dim,
                       memo, mutate_kwargs, module.label, surviving=surviving, skip_limit=limit, k=k)
        return None


class ProgressiveLayer(SplitsChannels, DifferentiableMixedLayer):
    """A ``LayerChoice`` outside a cell that mixes only its surviving candidates.

    It is NNI's differentiable layer (``names``, one weight per name in ``_arch_alpha``, the
    export ``names[argmax alpha]``) over the surviving candidates alone, under the user's names
    (a list's indices, a dict's keys), so the export picks among them and freezes on the user's
    space; the label keeps its whole ``domain``. The dropped candidates' modules leave the supernet,
    and with them any choice nested in them (which then is not exported: NNI freezes a network
    without the choices its chosen candidates do not hold).

    Parameters
    ----------
    paths
        The ``LayerChoice`` 's candidates, a list or a dict.
    kept
        The names of the candidates that survive.
    alpha
        The architecture vector over ``kept``, in the candidates' order.
    k
        ``None``: the candidates see all channels. Otherwise PC-DARTS's partial channels: they are
        rebuilt for 1/k of the input channels, the rest bypasses them.
    """

    def __init__(self, paths, kept: tuple[Any, ...], alpha: nn.Parameter, softmax: nn.Module, label: str, *,
                 k: int | None = None):
        # LayerChoice's constructor (DifferentiableMixedLayer's wants a weight for every candidate):
        # it names the candidates as the user's LayerChoice does; the dropped ones then leave
        init_as_layer_choice(self, paths, label)
        self.domain = list(self.names)
        for name in self.names:
            if name not in kept:
                delattr(self, str(name))
        self.names = [name for name in self.names if name in kept]
        if len(alpha) != len(self.names):
            raise ValueError(f'{label}: {len(alpha)} architecture weights for {len(self.names)} surviving candidates')
        for name in self.names:
            self[name] = self._searched(self[name], k, f'{label}/{name}')
        set_architecture_weights(self, alpha, softmax)
        self.k = k

    @staticmethod
    def _searched(candidate: nn.Module, k: int | None, label: str) -> nn.Module:
        """``candidate`` as the search runs it: an identity followed by the skip-connect dropout, and
        rebuilt for 1/k of the channels with ``k``."""
        if isinstance(candidate, nn.Identity):
            candidate = SkipConnectDropout()
        return candidate if k is None else build_for_channel_fraction(candidate, k, label)

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs, *, surviving: SurvivingOperations, k: int | None = None):
        if type(module) is LayerChoice:
            kept = tuple(surviving.get(module.label, module.names))
            key = module.label + '/surviving'
            if key not in memo:  # shared by every LayerChoice of this label
                memo[key] = nn.Parameter(torch.randn(len(kept)) * 1e-3)
            return cls(module.candidates, kept, memo[key], mutate_kwargs.get('softmax', nn.Softmax(-1)),
                       module.label, k=k)
        return None

    def operation_weights(self) -> dict[Any, float]:
        """``softmax(alpha)`` by candidate name."""
        return dict(zip(self.names, probabilities(self).tolist()))

    def probabilities(self) -> torch.Tensor:
        """``softmax(alpha)`` over the label's whole ``domain``, 0 for the dropped candidates (differentiable)."""
        weights = probabilities(self)
        kept = torch.tensor([self.domain.index(name) for name in self.names], device=weights.device)
        return weights.new_zeros(len(self.domain)).index_put((kept,), weights)

    def forward(self, *args, **kwargs):
        if self.k is None:
            return mixed_layer_output(self, args, kwargs)
        (x,) = args
        weights, chosen = layer_weights(self)
        return partial_channel_mix(x, [self[name] for name in self.names], weights, self.k, self.label, chosen)
