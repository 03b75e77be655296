"""The supernet modules the cells slot builds: NNI's differentiable cell and ``LayerChoice``, with
the pieces the techniques set (:class:`~.cell_design.CellDesign`).

- **Which candidates a mixed operation keeps** (P-DARTS). After every stage P-DARTS keeps in each
  mixed operation the candidates with the highest weights and drops the rest, so a deeper network
  fits in the same memory: an edge holds just its surviving operations (a dropped operation is
  never even built) and one architecture vector over them, the zero operation included while it
  survives; a free ``LayerChoice`` mixes its surviving candidates, under the user's names, with one
  vector over them. Identity skip-connects (in a cell, and any ``nn.Identity`` candidate of a free
  ``LayerChoice``) are followed by a dropout whose rate the strategy sets every epoch
  (:class:`SkipConnectDropout`); a stride-2 skip-connect (a ``FactorizedReduce``, which has
  weights) is left as it is. A cell derives by DARTS's rule with P-DARTS's limit on skip-connects
  in the normal cell (:class:`~.supernet_cell.SupernetCell`); a free ``LayerChoice`` exports its
  strongest surviving candidate.
- **Which channels the candidates see** (:mod:`~.channels`; PC-DARTS's
  :class:`~.partial_channel.ChannelSplit`): each mixed operation mixes its candidates on 1/K of
  the channels, and each cell node weighs its incoming edges with learned ``softmax(beta)`` (edge
  normalization).
- **How the forward pass weighs the candidates** (GDAS's sampling, :mod:`~.weighing`): NNI's
  ``configure_softmax`` module, handed to every module here.

With nothing pruned, a cell is NNI's differentiable cell, built by NNI's constructor (its vectors,
their labels and their order), and a free ``LayerChoice`` takes NNI's vector for its label.
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
from .channels import Channels
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


class DesignedCell(DartsCell):
    """A differentiable cell with the cells slot's pieces (read and derived as every
    :class:`~.darts_cell.DartsCell`, its skip-connects limited).

    Parameters
    ----------
    surviving
        ``None``: nothing pruned, NNI's cell. Otherwise per edge the operations it keeps (see
        :data:`SurvivingOperations`; an edge not listed keeps all), each identity skip-connect
        followed by :class:`SkipConnectDropout`.
    skip_limit
        The most skip-connects the derived cell may hold (``None``: no limit).
    channels
        ``None``: every edge sees all channels. Otherwise the piece that builds and mixes the
        edges (:class:`~.channels.Channels`: PC-DARTS's partial channels and edge normalization).
    """

    def __init__(self, op_factory, num_nodes, num_ops_per_node, num_predecessors, preprocessor, postprocessor,
                 concat_dim, memo, mutate_kwargs, label, *, surviving: SurvivingOperations | None,
                 skip_limit: int | None, channels: Channels | None):
        arguments = (num_nodes, num_ops_per_node, num_predecessors, preprocessor, postprocessor, concat_dim, memo,
                     mutate_kwargs, label)
        if surviving is None:
            super().__init__(op_factory, *arguments)
        else:
            self._build_pruned(op_factory, arguments, surviving)
        self.skip_limit = skip_limit
        self.channels = channels
        if channels is not None:
            for node, node_edges in zip(self.output_node_indices, self.ops):
                for source, operations in enumerate(node_edges):
                    node_edges[source] = channels.edge(operations, edge_label(self.label, node, source))
            if channels.weighs_edges:
                self._arch_beta = edge_normalization(label, self.output_node_indices, memo)

    def _build_pruned(self, op_factory: Any, arguments: tuple, surviving: SurvivingOperations) -> None:
        # NNI's differentiable cell would give every edge the same operations and a vector over
        # all of them: build the edges through the sampling cell and the vectors here instead.
        *_, memo, mutate_kwargs, label = arguments
        init_as_sampling_cell(self, _restricted(op_factory, label, surviving), *arguments)
        self.edge_operations: dict[str, list[str]] = {}
        vectors = nn.ParameterDict()
        for node, node_edges in zip(self.output_node_indices, self.ops):
            for source, operations in enumerate(node_edges):
                edge = edge_label(self.label, node, source)
                kept = surviving.get(edge, (*self.op_names, ZERO_OPERATION))
                # P-DARTS's placement: dropout after identity skip-connects, not a stride-2 one (FactorizedReduce)
                node_edges[source] = OperationsEdge({
                    name: SkipConnectDropout() if name == SKIP_CONNECT and isinstance(op, nn.Identity) else op
                    for name, op in operations.items() if name in kept})
                zero = [ZERO_OPERATION] if ZERO_OPERATION in kept else []
                self.edge_operations[edge] = [*node_edges[source], *zero]
                if edge + '/in_cell' not in memo:  # shared by every cell with this label
                    memo[edge + '/in_cell'] = nn.Parameter(torch.randn(len(self.edge_operations[edge])) * 1e-3)
                vectors[edge] = memo[edge + '/in_cell']
        set_architecture_weights(self, vectors, mutate_kwargs.get('softmax', nn.Softmax(-1)))
        self._arch_beta = nn.ParameterDict()

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs, *, surviving: SurvivingOperations | None,
               skip_limit: int | None, channels: Channels | None):
        if type(module) is Cell and module.op_candidates_factory is not None:
            # P-DARTS limits the skip-connects of normal cells only
            limit = None if 'reduce' in module.label else skip_limit
            return cls(module.op_candidates_factory, module.num_nodes, module.num_ops_per_node,
                       module.num_predecessors, module.preprocessor, module.postprocessor, module.concat_dim,
                       memo, mutate_kwargs, module.label, surviving=surviving, skip_limit=limit,
                       channels=channels)
        return None


class DesignedLayer(DifferentiableMixedLayer):
    """A ``LayerChoice`` outside a cell with the cells slot's pieces.

    It is NNI's differentiable layer (``names``, one weight per name in ``_arch_alpha``, the
    export ``names[argmax alpha]``) over the candidates it keeps, under the user's names (a list's
    indices, a dict's keys), so the export picks among them and freezes on the user's space; the
    label keeps its whole ``domain``. Dropped candidates' modules leave the supernet, and with them
    any choice nested in them (which then is not exported: NNI freezes a network without the
    choices its chosen candidates do not hold).

    Parameters
    ----------
    paths
        The ``LayerChoice`` 's candidates, a list or a dict.
    kept
        ``None``: nothing pruned. Otherwise the names of the candidates that survive, an identity
        among them followed by :class:`SkipConnectDropout`.
    alpha
        The architecture vector over the kept candidates, in the candidates' order.
    channels
        ``None``: the candidates see all channels. Otherwise the piece that builds and mixes them
        (:class:`~.channels.Channels`; PC-DARTS's partial channels: 1/k of the input channels
        through the candidates, the rest bypassing them).
    """

    def __init__(self, paths, kept: tuple[Any, ...] | None, alpha: nn.Parameter, softmax: nn.Module, label: str, *,
                 channels: Channels | None):
        # LayerChoice's constructor (DifferentiableMixedLayer's wants a weight for every candidate):
        # it names the candidates as the user's LayerChoice does; the dropped ones then leave
        init_as_layer_choice(self, paths, label)
        self.domain = list(self.names)
        if kept is not None:
            for name in self.names:
                if name not in kept:
                    delattr(self, str(name))
            self.names = [name for name in self.names if name in kept]
            for name in self.names:
                if isinstance(self[name], nn.Identity):
                    self[name] = SkipConnectDropout()
        if len(alpha) != len(self.names):
            raise ValueError(f'{label}: {len(alpha)} architecture weights for {len(self.names)} candidates')
        if channels is not None:
            for name in self.names:
                self[name] = channels.candidate(self[name], f'{label}/{name}')
        set_architecture_weights(self, alpha, softmax)
        self.channels = channels

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs, *, surviving: SurvivingOperations | None,
               channels: Channels | None):
        if type(module) is not LayerChoice:
            return None
        softmax = mutate_kwargs.get('softmax', nn.Softmax(-1))
        if surviving is None:  # NNI's vector for the label
            return cls(module.candidates, None, memo[module.label], softmax, module.label, channels=channels)
        kept = tuple(surviving.get(module.label, module.names))
        key = module.label + '/surviving'
        if key not in memo:  # shared by every LayerChoice of this label
            memo[key] = nn.Parameter(torch.randn(len(kept)) * 1e-3)
        return cls(module.candidates, kept, memo[key], softmax, module.label, channels=channels)

    def operation_weights(self) -> dict[Any, float]:
        """``softmax(alpha)`` by candidate name."""
        return dict(zip(self.names, probabilities(self).tolist()))

    def probabilities(self) -> torch.Tensor:
        """``softmax(alpha)`` over the label's whole ``domain``, 0 for the dropped candidates (differentiable)."""
        weights = probabilities(self)
        kept = torch.tensor([self.domain.index(name) for name in self.names], device=weights.device)
        return weights.new_zeros(len(self.domain)).index_put((kept,), weights)

    def forward(self, *args, **kwargs):
        if self.channels is None:
            return mixed_layer_output(self, args, kwargs)
        (x,) = args  # the candidates of a layer whose channels are split take one tensor
        weights, chosen = layer_weights(self)
        return self.channels.node_output([x], [[self[name] for name in self.names]], [weights], None, self.label,
                                         [chosen])
