"""Partial-channel connections (PC-DARTS, Xu et al., ICLR 2020).

Only 1/K of an edge's input channels go through the candidate operations; the other channels
bypass them (max-pooled 2x2 where the edge halves the resolution), are concatenated back, and
the result is channel-shuffled with K groups so that a different slice is processed next time.

The candidates are rebuilt for C/K channels (:func:`build_for_channel_fraction`; a cell's edge:
:class:`PartialChannelEdge`; the cells slot's piece: :class:`ChannelSplit`), so compute, weights
and activation memory really drop by K, not only the arithmetic. In a cell, each node also weighs
its incoming edges with learned ``softmax(beta)`` (edge normalization, :func:`partial_channel_node`);
at derivation an edge scores ``max over non-zero operations of softmax(alpha) x softmax(beta)``
(:class:`~.darts_cell.DartsCell`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .batched_edges import mix_edges


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` equal channel groups: channel ``g * (C/groups) + i`` moves to ``i * groups + g``."""
    batch, channels, *spatial = x.shape
    return x.view(batch, groups, channels // groups, *spatial).transpose(1, 2).reshape(batch, channels, *spatial)


def build_for_channel_fraction(module: nn.Module, k: int, label: str) -> nn.Module:
    """``module`` with its convolutions and batch norms rebuilt for 1/``k`` of the channels.

    Handles what cell operations are made of: ``Conv2d`` (plain or depthwise) and ``BatchNorm2d``,
    in any nesting; parameter-free modules (pooling, ReLU, identity) need no change. The
    rebuild happens in place (the full-width layers are dropped, not copied): callers pass
    candidates of a choice that the supernet is replacing.

    Raises
    ------
    ConfigError
        Naming ``label``, when a channel count is not divisible by ``k`` or a module with
        parameters is of another kind.
    """
    if isinstance(module, _REBUILT):
        return _rebuild(module, k, label)
    _rebuild_in_place(module, k, label)
    return module


class PartialChannelEdge(nn.ModuleDict):
    """One cell edge: its candidate operations by name, built for 1/``k`` of the channels (the
    cell's nodes mix them: :func:`partial_channel_node`)."""

    def __init__(self, operations: nn.ModuleDict, k: int, label: str):
        super().__init__({name: build_for_channel_fraction(op, k, f'{label}/{name}')
                          for name, op in operations.items()})
        self.k = k
        self.label = label


class ChannelSplit:
    """The cells slot's channels piece for PC-DARTS (:class:`~.channels.Channels`): 1/``k`` of the
    channels through the candidates, the rest bypassing them, and edge normalization in cells."""

    weighs_edges = True

    def __init__(self, k: int):
        self.k = k

    def edge(self, operations: nn.ModuleDict, label: str) -> nn.ModuleDict:
        return PartialChannelEdge(operations, self.k, label)

    def candidate(self, module: nn.Module, label: str) -> nn.Module:
        return build_for_channel_fraction(module, self.k, label)

    def node_output(self, inputs: Sequence[torch.Tensor], candidates: Sequence[Sequence[nn.Module]],
                    weights: Sequence[torch.Tensor], edge_weights: torch.Tensor | None, label: str,
                    drawn: Sequence[int | None]) -> torch.Tensor:
        return partial_channel_node(inputs, candidates, weights, edge_weights, self.k, label, drawn)


_REBUILT = (nn.Conv2d, nn.BatchNorm2d)


def _rebuild_in_place(module: nn.Module, k: int, label: str) -> None:
    if next(module.parameters(recurse=False), None) is not None:
        raise ConfigError(f'{label}: partial channels cannot rebuild {type(module).__name__} for 1/{k} of its '
                          'channels (only Conv2d and BatchNorm2d)')
    for name, child in module.named_children():
        if isinstance(child, _REBUILT):
            setattr(module, name, _rebuild(child, k, label))
        else:
            _rebuild_in_place(child, k, label)


def _divide(channels: int, k: int, label: str, what: str) -> int:
    if channels % k:
        raise ConfigError(f'{label}: {what} has {channels} channels, not divisible by k={k}; '
                          f'choose k among the divisors of {channels} or widen the space')
    return channels // k


def _rebuild(module: nn.Module, k: int, label: str) -> nn.Module:
    what = type(module).__name__
    if isinstance(module, nn.BatchNorm2d):
        return nn.BatchNorm2d(_divide(module.num_features, k, label, what), eps=module.eps, momentum=module.momentum,
                              affine=module.affine, track_running_stats=module.track_running_stats)
    if module.groups == module.in_channels and module.groups > 1:
        groups = _divide(module.groups, k, label, f'depthwise {what}')
    elif module.groups == 1:
        groups = 1
    else:
        raise ConfigError(f'{label}: partial channels cannot split a {what} with {module.groups} groups')
    return nn.Conv2d(_divide(module.in_channels, k, label, what), _divide(module.out_channels, k, label, what),
                     module.kernel_size, module.stride, module.padding, module.dilation, groups,
                     module.bias is not None, module.padding_mode)


def partial_channel_node(inputs: Sequence[torch.Tensor], candidates: Sequence[Sequence[nn.Module]],
                         weights: Sequence[torch.Tensor], edge_weights: torch.Tensor | None, k: int,
                         label: str, drawn: Sequence[int | None] | None = None) -> torch.Tensor:
    """``sum_e b_e * shuffle(concat(sum_o w_eo * o(x_e[:C/K]), bypass(x_e[C/K:])), K)``; one edge
    (a free ``LayerChoice``): ``shuffle(concat(sum_o w_o * o(x[:C/K]), bypass(x[C/K:])), K)``.

    Edge ``e`` has input ``inputs[e]``, operations ``candidates[e]``, one weight per operation in
    ``weights[e]`` (possibly followed by the zero operation's, which adds nothing) and weight
    ``b_e = edge_weights[e]`` (1 where ``None``); ``drawn[e]``, where given, the one candidate that
    runs on edge ``e`` (:func:`~.batched_edges.mix_edges`). The shuffle and the concatenation are linear, so
    the node computes ``shuffle(concat(sum_eo b_e w_eo o(x_e[:C/K]), sum_e b_e bypass(x_e[C/K:])), K)``:
    one shuffle, each operation run once for every edge (:func:`~.batched_edges.mix_edges`). With
    ``k`` 1 that is ``sum_eo b_e w_eo o(x_e)``: DARTS's mixture with edge normalization.

    Raises
    ------
    ConfigError
        Naming ``label``, when the operations change the channel count (the bypassed channels
        could not be put back) or change the resolution other than halving it.
    """
    halves = [x.split([_divide(x.shape[1], k, label, 'the input'), x.shape[1] - x.shape[1] // k], dim=1)
              for x in inputs]
    if edge_weights is not None:
        weights = [edge_weight * w for edge_weight, w in zip(edge_weights, weights)]
    try:
        mixed = mix_edges([processed for processed, _ in halves], candidates, weights, drawn)
    except RuntimeError as error:  # a candidate with a layer that does not scale with the channels
        if isinstance(error, torch.OutOfMemoryError):
            raise
        raise ConfigError(f'{label}: a candidate fails on 1/{k} of the channels ({error}); {_PARTIAL_CANDIDATES}') \
            from error
    if k == 1:  # every channel through the operations: nothing bypassed, and a shuffle of one group moves nothing
        return mixed
    bypassed = None
    for edge, (processed, bypass) in enumerate(halves):
        if mixed.shape[-2:] != bypass.shape[-2:]:  # a reduction edge: the bypass halves its resolution too
            bypass = F.max_pool2d(bypass, 2, 2)
        if mixed.shape[1] != processed.shape[1] or mixed.shape[-2:] != bypass.shape[-2:]:
            raise ConfigError(f'{label}: the candidates map {tuple(processed.shape[1:])} to '
                              f'{tuple(mixed.shape[1:])}; ' + _PARTIAL_CANDIDATES)
        if edge_weights is not None:
            bypass = edge_weights[edge] * bypass
        bypassed = bypass if bypassed is None else bypassed + bypass
    return channel_shuffle(torch.cat([mixed, bypassed], dim=1), k)


_PARTIAL_CANDIDATES = ('partial channels need candidates that keep the channel count and halve the resolution at '
                       'most, each layer scaling with the channels (search this choice without pcdarts: darts, '
                       'darts2, stabilized, pdarts, ladarts)')
