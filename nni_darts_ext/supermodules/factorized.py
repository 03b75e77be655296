"""Scalable-DARTS supernet cells: factorized architecture parameters over a product of candidates.

An edge of a factored space chooses among unfactored candidates (pooling, skip-connect, the
zero operation) and the combinations ``ACTIVATION+CONV`` of an activation factor (A values)
and a convolution factor (O values). :class:`FactorizedCell` gives each edge three
architecture vectors: one over the activations, one over the convolutions, one over
``[the factored group, each unfactored candidate, zero]``. The weight of a combination is

    softmax(group)[0] * softmax(activation)[a] * softmax(conv)[o],

so A + O + (2 + unfactored) parameters stand for A x O combinations, and all weights sum to one.
The group's softmax is taken over its parameter plus a constant offset, ``log(A x O)`` on the
factored entry, so that every candidate starts at the weight DARTS would give it on the
explicit product space (uniform over all candidates), and export compares a combination's
product weight with an unfactored candidate's weight fairly. The offset is a buffer, not part
of the parameter: the parameter starts near zero like every other architecture vector, and the
architecture optimizer's weight decay pulls the weights toward that uniform start, not against
the combinations.

The forward pass computes the mixed activation ``m(x) = sum_a w_a act_a(x)`` once per edge
and feeds it into each of the O convolution bodies: O bodies run, never A x O. This equals the
explicit weighted sum over all combinations,

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
from nni.nas.nn.pytorch import Cell
from nni.nas.nn.pytorch.cell import create_cell_op_candidates, preprocess_cell_inputs
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

from ..errors import ConfigError
from ..spaces.factors import (ACTIVATION, ACTIVATIONS, CONV, FACTORS, ActivatedOperation, check_factor, combination,
                              factor_values, split_combination)
from .derivation import EdgeScore, derive_cell

GROUP = 'group'
"""The edge's vector over [the factored group, each unfactored candidate, the zero operation]."""


class EdgeWeights(NamedTuple):
    """The softmaxes of one edge's three architecture vectors."""
    group: torch.Tensor
    activation: torch.Tensor
    conv: torch.Tensor


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


class FactorizedCell(BaseSuperNetModule):
    """An NNI ``Cell`` of a factored space as a differentiable supernet cell with factorized parameters.

    It keeps the cell's choices (``CELL/op_NODE_SLOT`` over every candidate name, combinations
    included, and ``CELL/input_NODE_SLOT``), so what it exports freezes the original space.
    Edge vectors are shared by all cells of the same label, as in NNI's differentiable cell.

    Attributes
    ----------
    group_offset
        Buffer added to every group vector before its softmax: ``log(A x O)`` on the factored
        entry, zero elsewhere.
    """

    _arch_parameter_names: list[str] = ['_arch_alpha']

    def __init__(self, op_factory: dict[str, Any], num_nodes: int, num_ops_per_node: int, num_predecessors: int,
                 preprocessor: nn.Module, postprocessor: nn.Module, concat_dim: int, memo: dict[str, Any],
                 mutate_kwargs: dict[str, Any], label: str, *, activations: list[str], convs: list[str]):
        super().__init__()
        self.num_nodes = num_nodes
        self.num_ops_per_node = num_ops_per_node
        self.num_predecessors = num_predecessors
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.concat_dim = concat_dim
        self.op_names = list(op_factory)
        self.other_names = [name for name in self.op_names if split_combination(name) is None]
        self.activation_names, self.conv_names = activations, convs
        for name in activations:
            try:
                check_factor(ACTIVATION, name)
            except ConfigError as err:
                raise ConfigError(f'cell {label}: {err}') from None
        self.output_node_indices = list(range(num_predecessors, num_nodes + num_predecessors))

        # Only the convolution bodies and the unfactored candidates are built: never A x O modules.
        built = {combination(activations[0], conv): conv for conv in convs}
        self.ops = nn.ModuleList()
        for node in self.output_node_indices:
            edges = nn.ModuleList()
            for source in range(node):
                candidates, _ = create_cell_op_candidates(
                    {name: op_factory[name] for name in [*built, *self.other_names]}, node, 0, source)
                bodies = {conv: self._body(candidates[name], f'{label}/{node}_{source}/{name}')
                          for name, conv in built.items()}
                edges.append(FactorizedEdge(activations, bodies,
                                            {name: candidates[name] for name in self.other_names}))
            self.ops.append(edges)

        with label_scope(label) as self.label_scope:
            for node in self.output_node_indices:
                for slot in range(num_ops_per_node):
                    self.add_mutable(Categorical(self.op_names, label=f'op_{node}_{slot}'))
                    self.add_mutable(CategoricalMultiple(range(node), n_chosen=1, label=f'input_{node}_{slot}'))

        # log(A x O) on the factored group's logit: every candidate, combinations included, starts at
        # the weight DARTS gives it on the product space, 1 / (A x O + unfactored + zero).
        offset = torch.zeros(2 + len(self.other_names))
        offset[0] = math.log(len(activations) * len(convs))
        self.register_buffer('group_offset', offset, persistent=False)
        sizes = {GROUP: len(offset), ACTIVATION: len(activations), CONV: len(convs)}
        self._arch_alpha = nn.ParameterDict()
        for node in self.output_node_indices:
            for source in range(node):
                for part, size in sizes.items():
                    key = f'{self.label}/{node}_{source}/{part}'
                    if key not in memo:
                        memo[key] = nn.Parameter(torch.randn(size) * 1e-3)
                    self._arch_alpha[key] = memo[key]
        self._softmax = mutate_kwargs.get('softmax', nn.Softmax(-1))

    @staticmethod
    def _body(module: nn.Module, where: str) -> ActivatedOperation:
        if not isinstance(module, ActivatedOperation):
            raise ConfigError(f'{where}: a combination must be built as an ActivatedOperation (an operation whose '
                              f'activations can be swapped), got {type(module).__name__}')
        return module

    @property
    def label(self) -> str:
        return self.label_scope.name

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs):
        """Replace a ``Cell`` whose candidates (by name) include combinations ``ACTIVATION+CONV``."""
        if type(module) is not Cell or not isinstance(module.op_candidates_factory, dict):
            return None
        factors = factor_values(list(module.op_candidates_factory), where=f'cell {module.label}')
        if factors is None:
            return None
        activations, convs = factors
        return cls(module.op_candidates_factory, module.num_nodes, module.num_ops_per_node, module.num_predecessors,
                   module.preprocessor, module.postprocessor, module.concat_dim, memo, mutate_kwargs, module.label,
                   activations=activations, convs=convs)

    def resample(self, memo):
        """Differentiable: nothing to sample."""
        return {}

    def arch_parameters(self):
        """The edge vectors of this cell (not recursive)."""
        return iter(self._arch_alpha.values())

    def factor_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The architecture vectors of each factor (``activation``, ``conv``), all edges."""
        return {factor: [p for key, p in self._arch_alpha.items() if key.endswith('/' + factor)]
                for factor in FACTORS}

    def edge_weights(self, node: int, source: int) -> EdgeWeights:
        """The softmaxes of the edge's group (its vector plus :attr:`group_offset`), activation and
        convolution vectors."""
        edge = f'{self.label}/{node}_{source}'
        return EdgeWeights(self._softmax(self._arch_alpha[f'{edge}/{GROUP}'] + self.group_offset),
                           self._softmax(self._arch_alpha[f'{edge}/{ACTIVATION}']),
                           self._softmax(self._arch_alpha[f'{edge}/{CONV}']))

    def candidate_weights(self, node: int, source: int) -> torch.Tensor:
        """The weight of every candidate, in ``op_names`` order, then the zero operation's: sums to one."""
        weights = self.edge_weights(node, source)
        by_name = {name: weights.group[1 + index] for index, name in enumerate(self.other_names)}
        products = weights.group[0] * torch.outer(weights.activation, weights.conv)
        for a, activation in enumerate(self.activation_names):
            for o, conv in enumerate(self.conv_names):
                by_name[combination(activation, conv)] = products[a, o]
        return torch.stack([by_name[name] for name in self.op_names] + [weights.group[-1]])

    def forward(self, *inputs: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        processed_inputs = preprocess_cell_inputs(self.num_predecessors, *inputs)
        states = self.preprocessor(processed_inputs)
        for node, edges in zip(self.output_node_indices, self.ops):
            states.append(sum(edge(states[source], self.edge_weights(node, source))
                              for source, edge in enumerate(edges)))
        return self.postprocessor(torch.cat(states[self.num_predecessors:], self.concat_dim), processed_inputs)

    @torch.no_grad()
    def export_probs(self, memo):
        """Per edge ``CELL/NODE_SOURCE``: every candidate's weight (the zero operation left out, as NNI's cells do)."""
        probabilities = {}
        for node in self.output_node_indices:
            for source in range(node):
                key = f'{self.label}/{node}_{source}'
                if key not in memo:
                    probabilities[key] = dict(zip(self.op_names, self.candidate_weights(node, source).tolist()))
        return probabilities

    @torch.no_grad()
    def edge_scores(self, node: int) -> list[EdgeScore]:
        """Per incoming edge: (weight of its best non-zero candidate, source, that candidate)."""
        scores = []
        for source in range(node):
            weights = self.candidate_weights(node, source)[:-1]
            best = int(weights.argmax())
            scores.append((float(weights[best]), source, self.op_names[best]))
        return scores

    def export(self, memo):
        """Each node's best inputs, each with its best candidate: the best combination is the
        largest product of the factors' weights (times the group's)."""
        return derive_cell(self.label, self.output_node_indices, self.num_ops_per_node, memo, self.edge_scores)
