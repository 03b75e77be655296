"""Scalable-DARTS supermodules: factorized architecture parameters over a product of candidates.

A factored choice chooses among unfactored candidates (pooling, skip-connect, the zero operation
of a cell edge) and the combinations ``ACTIVATION+CONV`` of an activation factor (A values) and
a convolution factor (O values), told apart by their names alone
(:func:`~nni_darts_ext.spaces.factors.factoring`). Each factored choice gets three architecture
vectors: one over the activations, one over the convolutions, one over ``[the factored group,
each unfactored candidate, zero]`` (left out where nothing stands beside the product: its one
weight is 1). The weight of a combination is

    softmax(group)[0] * softmax(activation)[a] * softmax(conv)[o],

so A + O + (2 + unfactored) parameters stand for A x O combinations, and all weights sum to one.
The group's softmax is taken over its parameter plus a constant offset, ``log(A x O)`` on the
factored entry, so that every candidate starts at the weight DARTS would give it on the
explicit product space (uniform over all candidates), and export compares a combination's
product weight with an unfactored candidate's weight fairly. The offset is a buffer, not part
of the parameter: the parameter starts near zero like every other architecture vector, and the
architecture optimizer's weight decay pulls the weights toward that uniform start, not against
the combinations.

Two forward passes, by what the combinations are built as:

- The project's operations (:class:`~nni_darts_ext.spaces.factors.ActivatedOperation` of a
  registry activation, as the YAML spaces build them): :class:`FactorizedEdge` computes the
  mixed activation ``m(x) = sum_a w_a act_a(x)`` once per edge and feeds it into each of the O
  convolution bodies: O bodies run, never A x O.
- A user's own modules (any other ``nn.Module``, in a ``Cell`` 's operation dict or a
  ``LayerChoice``): nothing tells where their activation ends, so every combination runs, weighted
  by its product weight (:class:`ProductEdge`, :class:`FactorizedLayer`). This is exactly the
  weighted sum over the product space: the parameters are factorized, the compute is DARTS's.

The shared bodies equal the explicit weighted sum over all combinations,

    sum_a sum_o w_a w_o conv_o(act_a(x)) = sum_o w_o conv_o(m(x)),

exactly when everything a body applies after its first activation is affine in its input
(convolutions; batch norm in eval mode), since the ``w_a`` sum to one: NNI's ``dil_conv_*``
and ``conv_*``. Two approximations remain, and this module makes them on purpose:

- batch norm in training mode normalizes with the statistics of the mixed input, not of each
  combination's own input;
- a body with a second activation inside (NNI's ``sep_conv_*``: ReLU, conv, BN, ReLU, conv, BN)
  applies the same mixed activation there, ``conv2(m(conv1(m(x))))``, where the explicit sum
  would apply each combination's own activation twice, ``sum_a w_a conv2(act_a(conv1(act_a(x))))``.

A frozen model is exact either way: it builds only the chosen combination, with its own
activation everywhere (:class:`~nni_darts_ext.spaces.factors.ActivatedOperation`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn
from nni.mutable import Categorical, CategoricalMultiple, label_scope
from nni.nas.nn.pytorch import Cell, LayerChoice
from nni.nas.nn.pytorch.cell import create_cell_op_candidates
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

from ..spaces.factors import (ACTIVATION, ACTIVATIONS, CONV, FACTORS, ActivatedOperation, Factoring, combination,
                              factoring)
from ..architecture import choice_name, edge_ends, edge_label
from ..nni_internals import architecture_parameters, architecture_weights, normalization, set_architecture_weights
from .derivation import EdgeScore
from .supernet_cell import SupernetCell

GROUP = 'group'
"""The vector over [the factored group, each unfactored candidate, the zero operation]."""


class EdgeWeights(NamedTuple):
    """The softmaxes of one factored choice's three architecture vectors."""
    group: torch.Tensor
    activation: torch.Tensor
    conv: torch.Tensor


def candidate_weights(factored: Factoring, weights: EdgeWeights) -> torch.Tensor:
    """Every candidate's weight, in ``factored.names`` order, then the group's entries after the
    unfactored candidates' (a cell edge's zero operation): sums to one."""
    by_name = {name: weights.group[1 + index] for index, name in enumerate(factored.others)}
    products = weights.group[0] * torch.outer(weights.activation, weights.conv)
    for a, activation in enumerate(factored.activations):
        for o, conv in enumerate(factored.convs):
            by_name[combination(activation, conv)] = products[a, o]
    return torch.stack([by_name[name] for name in factored.names] + list(weights.group[1 + len(factored.others):]))


class FactorizedEdge(nn.Module):
    """One edge: the activations, one body per convolution, the unfactored candidates.

    Parameters
    ----------
    activations
        Names from :data:`~nni_darts_ext.spaces.factors.ACTIVATIONS`.
    bodies
        Per convolution name, the combination built for this edge (with any activation: only
        its layers after the activations are used).
    others
        The unfactored candidates by name.
    """

    def __init__(self, activations: list[str], bodies: dict[str, ActivatedOperation], others: dict[str, nn.Module]):
        super().__init__()
        self.activations = nn.ModuleList(ACTIVATIONS[name]() for name in activations)
        self.bodies = nn.ModuleDict(bodies)
        self.others = nn.ModuleDict(others)

    def mixed_activation(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``sum_a weights[a] * act_a(x)``."""
        return sum(w * activation(x) for w, activation in zip(weights, self.activations))

    def forward(self, x: torch.Tensor, weights: EdgeWeights) -> torch.Tensor:
        def mixed(z: torch.Tensor) -> torch.Tensor:
            return self.mixed_activation(z, weights.activation)

        activated = mixed(x)  # once, shared by every convolution body
        factored = sum(w * body.body(activated, mixed) for w, body in zip(weights.conv, self.bodies.values()))
        # group weights: [factored, *others, zero]; zip stops before the zero, which adds nothing
        return weights.group[0] * factored + sum(w * op(x) for w, op in zip(weights.group[1:], self.others.values()))


class ProductEdge(nn.Module):
    """One edge whose combinations are a user's own modules: every candidate runs, weighted by its
    product weight (the explicit weighted sum over the product space)."""

    def __init__(self, factored: Factoring, candidates: dict[str, nn.Module]):
        super().__init__()
        self.factored = factored
        self.candidates = nn.ModuleDict({name: candidates[name] for name in factored.names})

    def forward(self, x: torch.Tensor, weights: EdgeWeights) -> torch.Tensor:
        # the zero operation's weight comes last; zip stops before it
        return sum(w * op(x) for w, op in zip(candidate_weights(self.factored, weights), self.candidates.values()))


def shares_bodies(factored: Factoring, combinations: list[nn.Module]) -> bool:
    """Whether an edge can feed one mixed activation to one body per convolution: every activation
    is a registry one and the ``combinations`` (one per convolution) are ``ActivatedOperation`` s."""
    return (set(factored.activations) <= set(ACTIVATIONS)
            and all(isinstance(module, ActivatedOperation) for module in combinations))


@architecture_parameters()
class FactorizedModule(BaseSuperNetModule):
    """What the factorized supermodules share: one factoring, its vectors per choice ``PREFIX``
    (``PREFIX/group``, ``PREFIX/activation``, ``PREFIX/conv``, shared through the memo by the
    modules of one label, as NNI's differentiable modules share theirs), and the weights they give.

    Attributes
    ----------
    group_offset
        Buffer added to every group vector before its softmax: ``log(A x O)`` on the factored
        entry, zero elsewhere.
    """

    def add_factor_vectors(self, factored: Factoring, prefixes: list[str], zero: bool, memo: dict[str, Any],
                           softmax: nn.Module) -> None:
        """The architecture vectors of each choice in ``prefixes``, the group's with a zero operation
        entry when ``zero``."""
        self.factored = factored
        # log(A x O) on the factored group's logit: every candidate, combinations included, starts at
        # the weight DARTS gives it on the product space, 1 / (A x O + unfactored + zero).
        offset = torch.zeros(1 + len(factored.others) + zero)
        offset[0] = math.log(len(factored.activations) * len(factored.convs))
        self.register_buffer('group_offset', offset, persistent=False)
        sizes = {GROUP: len(offset), ACTIVATION: len(factored.activations), CONV: len(factored.convs)}
        if len(offset) == 1:
            del sizes[GROUP]  # nothing beside the product: the group's one weight is 1
        vectors = nn.ParameterDict()
        for prefix in prefixes:
            for part, size in sizes.items():
                key = f'{prefix}/{part}'
                if key not in memo:
                    memo[key] = nn.Parameter(torch.randn(size) * 1e-3)
                vectors[key] = memo[key]
        set_architecture_weights(self, vectors, softmax)

    def resample(self, memo):
        """Differentiable: nothing to sample."""
        return {}

    def arch_parameters(self):
        """The factor vectors of this module (not recursive)."""
        return iter(architecture_weights(self).values())

    def factor_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The architecture vectors of each factor (``activation``, ``conv``), all choices."""
        return {factor: [p for key, p in architecture_weights(self).items() if key.endswith('/' + factor)]
                for factor in FACTORS}

    def factor_weights(self, prefix: str) -> EdgeWeights:
        """The softmaxes of the choice's group (its vector plus :attr:`group_offset`), activation and
        convolution vectors."""
        group, vectors, softmax = self.group_offset, architecture_weights(self), normalization(self)
        if f'{prefix}/{GROUP}' in vectors:
            group = group + vectors[f'{prefix}/{GROUP}']
        return EdgeWeights(softmax(group), softmax(vectors[f'{prefix}/{ACTIVATION}']),
                           softmax(vectors[f'{prefix}/{CONV}']))


class FactorizedCell(SupernetCell, FactorizedModule):
    """An NNI ``Cell`` with factored candidates as a differentiable supernet cell with factorized parameters.

    It keeps the cell's choices (``CELL/op_NODE_SLOT`` over every candidate name, combinations
    included, and ``CELL/input_NODE_SLOT``), so what it exports freezes the original space.
    Edge vectors are shared by all cells of the same label, as in NNI's differentiable cell.
    Each edge shares its convolution bodies (:class:`FactorizedEdge`) where the combinations are
    the project's operations, and runs every combination (:class:`ProductEdge`) where they are a
    user's own modules.
    """

    def __init__(self, op_factory: dict[str, Any], num_nodes: int, num_ops_per_node: int, num_predecessors: int,
                 preprocessor: nn.Module, postprocessor: nn.Module, concat_dim: int, memo: dict[str, Any],
                 mutate_kwargs: dict[str, Any], label: str, *, factored: Factoring):
        super().__init__()
        # NNI's cell attributes, as its differentiable cell keeps them
        self.num_nodes, self.num_ops_per_node, self.num_predecessors = num_nodes, num_ops_per_node, num_predecessors
        self.preprocessor, self.postprocessor, self.concat_dim = preprocessor, postprocessor, concat_dim
        self.op_names = factored.names
        self.output_node_indices = list(range(num_predecessors, num_nodes + num_predecessors))
        self.ops = nn.ModuleList(nn.ModuleList(self._edge(op_factory, factored, node, source) for source in range(node))
                                 for node in self.output_node_indices)

        with label_scope(label) as self.label_scope:
            for node in self.output_node_indices:
                for slot in range(num_ops_per_node):
                    self.add_mutable(Categorical(self.op_names, label=choice_name('op', node, slot)))
                    self.add_mutable(CategoricalMultiple(range(node), n_chosen=1, label=choice_name('input', node, slot)))

        self.edges = [edge_label(self.label, node, source) for node in self.output_node_indices for source in range(node)]
        self.add_factor_vectors(factored, self.edges, True, memo, mutate_kwargs.get('softmax', nn.Softmax(-1)))

    @staticmethod
    def _edge(op_factory: dict[str, Any], factored: Factoring, node: int, source: int) -> nn.Module:
        """The edge ``source -> node``: the convolution bodies and the unfactored candidates where the
        bodies can be shared (never A x O modules), every candidate otherwise."""
        def build(names: list[str]) -> dict[str, nn.Module]:
            return create_cell_op_candidates({name: op_factory[name] for name in names}, node, 0, source)[0]

        bodies = {combination(factored.activations[0], conv): conv for conv in factored.convs}
        candidates = build([*bodies, *factored.others])
        if shares_bodies(factored, [candidates[name] for name in bodies]):
            return FactorizedEdge(factored.activations, {conv: candidates[name] for name, conv in bodies.items()},
                                  {name: candidates[name] for name in factored.others})
        return ProductEdge(factored, {**candidates, **build([n for n in factored.names if n not in candidates])})

    @property
    def label(self) -> str:
        return self.label_scope.name

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs):
        """Replace a ``Cell`` whose operations (by name) include combinations ``ACTIVATION+CONV``."""
        if type(module) is not Cell or not isinstance(module.op_candidates_factory, dict):
            return None
        factored = factoring(list(module.op_candidates_factory), where=f'cell {module.label}')
        if factored is None:
            return None
        return cls(module.op_candidates_factory, module.num_nodes, module.num_ops_per_node, module.num_predecessors,
                   module.preprocessor, module.postprocessor, module.concat_dim, memo, mutate_kwargs, module.label,
                   factored=factored)

    def edge_weights(self, node: int, source: int) -> EdgeWeights:
        """The softmaxes of the edge's group (its vector plus :attr:`group_offset`), activation and
        convolution vectors."""
        return self.factor_weights(edge_label(self.label, node, source))

    def candidate_weights(self, node: int, source: int) -> torch.Tensor:
        """The weight of every candidate, in ``op_names`` order, then the zero operation's: sums to one."""
        return candidate_weights(self.factored, self.edge_weights(node, source))

    def edge_probabilities(self, edge: str) -> torch.Tensor:
        """The row of ``edge`` (``CELL/NODE_SOURCE``) over the cell's candidates, then the zero
        operation: their product weights (differentiable), as every supernet cell of this package gives it."""
        return self.candidate_weights(*edge_ends(edge))

    def node_output(self, node: int, inputs: list[torch.Tensor], edges: nn.ModuleList) -> torch.Tensor:
        return sum(edge(inputs[source], self.edge_weights(node, source)) for source, edge in enumerate(edges))

    @torch.no_grad()
    def export_probs(self, memo):
        """Per edge ``CELL/NODE_SOURCE``: every candidate's weight (the zero operation left out, as NNI's cells do)."""
        probabilities = {}
        for node in self.output_node_indices:
            for source in range(node):
                key = edge_label(self.label, node, source)
                if key not in memo:
                    probabilities[key] = dict(zip(self.op_names, self.candidate_weights(node, source).tolist()))
        return probabilities

    @torch.no_grad()
    def edge_scores(self, node: int, ruled_out: frozenset[tuple[int, int]] = frozenset()) -> list[EdgeScore]:
        """Per incoming edge: (weight of its best non-zero candidate, source, that candidate); the
        best combination is the largest product of the factors' weights (times the group's).
        Factorized cells take no skip limit, so nothing is ``ruled_out``."""
        scores = []
        for source in range(node):
            weights = self.candidate_weights(node, source)[:-1]
            best = int(weights.argmax())
            scores.append((float(weights[best]), source, self.op_names[best]))
        return scores


class FactorizedLayer(LayerChoice, FactorizedModule):
    """A ``LayerChoice`` with factored candidate names, searched with factorized parameters.

    Every candidate (the user's module) runs, weighted by its weight (:func:`candidate_weights`);
    the vectors are ``LABEL/activation``, ``LABEL/conv`` and, when unfactored candidates stand
    beside the combinations, ``LABEL/group``. Export picks the candidate of largest weight, by
    its name, so the result freezes the original space.
    """

    def __init__(self, candidates: dict[str, nn.Module], factored: Factoring, memo: dict[str, Any],
                 softmax: nn.Module, label: str):
        super().__init__(candidates, label=label)
        self.add_factor_vectors(factored, [label], False, memo, softmax)

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs):
        """Replace a ``LayerChoice`` whose candidate names include combinations ``ACTIVATION+CONV``."""
        if type(module) is not LayerChoice:
            return None
        factored = factoring(module.names, where=f'LayerChoice {module.label}')
        if factored is None:
            return None
        return cls(module.candidates, factored, memo, mutate_kwargs.get('softmax', nn.Softmax(-1)), module.label)

    def candidate_weights(self) -> torch.Tensor:
        """The weight of every candidate, in ``names`` order: sums to one."""
        return candidate_weights(self.factored, self.factor_weights(self.label))

    def forward(self, *args, **kwargs):
        return sum(w * self[name](*args, **kwargs) for w, name in zip(self.candidate_weights(), self.names))

    @torch.no_grad()
    def export_probs(self, memo):
        """Every candidate's weight, by name."""
        if self.label in memo:
            return {}
        return {self.label: dict(zip(self.names, self.candidate_weights().tolist()))}

    @torch.no_grad()
    def export(self, memo):
        """The candidate of largest weight: a combination's is the product of its factors' (times the group's)."""
        if self.label in memo:
            return {}
        return {self.label: self.names[int(self.candidate_weights().argmax())]}
