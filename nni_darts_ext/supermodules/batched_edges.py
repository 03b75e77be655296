"""A cell node's mixture with each candidate run once for all the node's edges.

A node of a differentiable cell sums ``w[e, o] * o_e(x_e)`` over its incoming edges ``e`` and their
candidates ``o``. The same candidate on different edges differs only in its weights, and the layers
cell candidates are made of (ReLU, convolutions, batch norms, pooling, identity) work per channel
or per channel group. So candidate ``o`` of ``n`` edges is one call of each of its layers on the
``n`` inputs side by side along the channels: a convolution with ``n`` times the groups and the
edges' kernels stacked, a batch norm over ``n`` times the channels (the statistics written back to
each edge's own). It computes the same values (to rounding) with ``n`` times fewer calls, and at
search sizes PyTorch's cost per call, not the arithmetic, dominates small convolutions: DARTS's
supernets at 8 or 16 channels, and PC-DARTS's 1/K of them most of all.

A candidate with any other layer (a ``FactorizedReduce``, a dropout, the user's own module) or with
hooks runs on its own, edge by edge, in the order the edges and candidates come, so random draws
(dropout) follow the same order as a loop over the edges would.
"""

from __future__ import annotations

from typing import Hashable, Sequence
from weakref import WeakKeyDictionary

import torch
import torch.nn.functional as F
from nni.nas.oneshot.pytorch.supermodule.operation import MixedOperation
from torch import Tensor, nn

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def signature(module: nn.Module) -> Hashable | None:
    """What must be equal for modules to run as one call (their kind, settings and training mode,
    not their weights); ``None`` for a module that must run on its own (one with a forward hook
    anywhere inside it among them). A module's structure is read once: what a cell's candidates
    are made of does not change while it searches."""
    if module not in _STRUCTURES:
        _STRUCTURES[module] = (_structure(module), tuple(module.modules()))
    structure, layers = _STRUCTURES[module]
    if structure is None or any(layer._forward_hooks or layer._forward_pre_hooks for layer in layers):
        return None
    return structure, module.training


_STRUCTURES: WeakKeyDictionary[nn.Module, tuple[Hashable | None, tuple[nn.Module, ...]]] = WeakKeyDictionary()


def _structure(module: nn.Module) -> Hashable | None:
    kind = type(module)
    if isinstance(module, nn.Sequential) and kind.forward is nn.Sequential.forward:
        parts = tuple(_structure(child) for child in module)
        return None if None in parts else parts
    if kind is nn.Identity or (isinstance(module, nn.ReLU) and kind.forward is nn.ReLU.forward):
        return 'identity' if kind is nn.Identity else 'relu'
    if isinstance(module, _POOLS) and kind.forward in (pool.forward for pool in _POOLS):
        return repr(module)  # a pool's repr holds every setting
    if isinstance(module, nn.Conv2d) and _computes_as(module, nn.Conv2d) and module.padding_mode == 'zeros':
        return ('conv', module.in_channels, module.out_channels, module.kernel_size, module.stride,
                module.padding, module.dilation, module.groups, module.bias is not None)
    if isinstance(module, nn.BatchNorm2d) and _computes_as(module, nn.BatchNorm2d) and module.momentum is not None:
        return ('batch_norm', module.num_features, module.eps, module.momentum, module.affine,
                module.track_running_stats)
    return None


def _computes_as(module: nn.Module, layer: type[nn.Module]) -> bool:
    """Whether ``module`` computes as ``layer`` does: its own forward, or NNI's mixed operation of it
    with no argument searched (NNI wraps every ``MutableConv2d`` and ``MutableBatchNorm2d`` in one)."""
    if type(module).forward is layer.forward:
        return True
    return isinstance(module, MixedOperation) and not module.mutable_arguments


def run_side_by_side(modules: Sequence[nn.Module], x: Tensor) -> Tensor:
    """``cat([m(x_m) for each module m])`` for ``x = cat(x_m)`` along the channels, one call per layer;
    the modules share one :func:`signature`."""
    first = modules[0]
    if isinstance(first, nn.Sequential):
        for layers in zip(*modules):
            x = run_side_by_side(layers, x)
        return x
    if isinstance(first, nn.Conv2d):
        bias = torch.cat([m.bias for m in modules]) if first.bias is not None else None
        return F.conv2d(x, torch.cat([m.weight for m in modules]), bias, first.stride, first.padding,
                        first.dilation, first.groups * len(modules))
    if isinstance(first, nn.BatchNorm2d):
        return _batch_norm_side_by_side(modules, x)
    if isinstance(first, nn.ReLU):
        return F.relu(x)  # never in place: the stacked input feeds the other candidates too
    return first(x)  # identity and pooling work per channel


def _batch_norm_side_by_side(modules: Sequence[nn.BatchNorm2d], x: Tensor) -> Tensor:
    first = modules[0]
    tracking = first.track_running_stats
    mean = torch.cat([m.running_mean for m in modules]) if tracking else None
    variance = torch.cat([m.running_var for m in modules]) if tracking else None
    weight = torch.cat([m.weight for m in modules]) if first.affine else None
    bias = torch.cat([m.bias for m in modules]) if first.affine else None
    output = F.batch_norm(x, mean, variance, weight, bias, first.training or not tracking, first.momentum, first.eps)
    if tracking and first.training:  # F.batch_norm updated the stacked statistics: hand each module its own
        torch._foreach_copy_([m.running_mean for m in modules], list(mean.chunk(len(modules))))
        torch._foreach_copy_([m.running_var for m in modules], list(variance.chunk(len(modules))))
        counting = [m.num_batches_tracked for m in modules if type(m).forward is nn.BatchNorm2d.forward]
        if counting:  # NNI's mixed batch norm counts no batches
            torch._foreach_add_(counting, 1)
    return output


def mix_edges(inputs: Sequence[Tensor], candidates: Sequence[Sequence[nn.Module]],
              weights: Sequence[Tensor]) -> Tensor:
    """``sum over edges e and candidates o of weights[e][o] * candidates[e][o](inputs[e])``.

    ``weights[e]`` may hold more entries than the edge has candidates (the zero operation's, last),
    which add nothing. Candidates of one :func:`signature` on inputs of one shape run as one call.
    """
    total: Tensor | None = None
    groups: dict[Hashable, list[tuple[int, int]]] = {}
    for edge, (x, operations) in enumerate(zip(inputs, candidates)):
        for index, operation in enumerate(operations):
            key = signature(operation)
            if key is None:
                term = weights[edge][index] * operation(x)
                total = term if total is None else total + term
            else:
                groups.setdefault((key, x.shape, x.dtype), []).append((edge, index))
    stacked_inputs: dict[tuple[int, ...], Tensor] = {}
    for members in groups.values():
        if len(members) == 1:
            (edge, index), = members
            term = weights[edge][index] * candidates[edge][index](inputs[edge])
        else:
            edges = tuple(edge for edge, _ in members)
            if edges not in stacked_inputs:
                stacked_inputs[edges] = torch.cat([inputs[edge] for edge in edges], 1)
            output = run_side_by_side([candidates[edge][index] for edge, index in members], stacked_inputs[edges])
            member_weights = torch.stack([weights[edge][index] for edge, index in members])
            term = torch.einsum('bn...,n->b...', output.unflatten(1, (len(members), -1)), member_weights)
        total = term if total is None else total + term
    assert total is not None, 'a node with no candidate operations'
    return total
