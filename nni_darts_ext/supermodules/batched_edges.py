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

Two more savings, in memory kept for the backward pass: the candidates that begin with a ReLU
(DARTS's convolutions) share one ReLU of their input, and a candidate that ends in a batch norm
takes its weight ``w[e, o]`` into the norm's affine transform, so the product keeps no copy of the
candidate's output (batch norm's backward needs only its input and statistics).

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

from .second_order_convolution import conv2d

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def signature(module: nn.Module) -> Hashable | None:
    """What must be equal for modules to run as one call (their kind, settings and training mode,
    not their weights); ``None`` for a module that must run on its own (one with a forward hook
    anywhere inside it among them). A module's structure is read once: what a cell's candidates
    are made of does not change while it searches."""
    structure, modules, _ = _read(module)
    if structure is None or any(layer._forward_hooks or layer._forward_pre_hooks for layer in modules):
        return None
    return structure, module.training


def _read(module: nn.Module) -> tuple[Hashable | None, tuple[nn.Module, ...], tuple[nn.Module, ...]]:
    """``module`` 's structure, every module in it, and its layers in the order they run."""
    if module not in _STRUCTURES:
        _STRUCTURES[module] = (_structure(module), tuple(module.modules()), _layers(module))
    return _STRUCTURES[module]


def _layers(module: nn.Module) -> tuple[nn.Module, ...]:
    if isinstance(module, nn.Sequential):
        return tuple(layer for child in module for layer in _layers(child))
    return (module,)


_STRUCTURES: WeakKeyDictionary[nn.Module, tuple[Hashable | None, tuple[nn.Module, ...], tuple[nn.Module, ...]]] = \
    WeakKeyDictionary()


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
    return _run_steps(_steps(modules), x)


def _steps(modules: Sequence[nn.Module]) -> list[tuple[nn.Module, ...]]:
    """The modules' layers in the order they run, the modules' ``i`` th layers together."""
    return list(zip(*(_read(module)[2] for module in modules)))


def _run_steps(steps: Sequence[tuple[nn.Module, ...]], x: Tensor) -> Tensor:
    for layers in steps:
        x = _layers_side_by_side(layers, x)
    return x


def _layers_side_by_side(layers: Sequence[nn.Module], x: Tensor, scale: Tensor | None = None) -> Tensor:
    first = layers[0]
    if isinstance(first, nn.Conv2d):
        bias = torch.cat([m.bias for m in layers]) if first.bias is not None else None
        return conv2d(x, torch.cat([m.weight for m in layers]), bias, first.stride, first.padding,
                      first.dilation, first.groups * len(layers))
    if isinstance(first, nn.BatchNorm2d):
        return _batch_norm_side_by_side(layers, x, scale)
    if isinstance(first, nn.ReLU):
        return F.relu(x)  # never in place: the stacked input feeds the other candidates too
    return first(x)  # identity and pooling work per channel


def _batch_norm_side_by_side(modules: Sequence[nn.BatchNorm2d], x: Tensor, scale: Tensor | None) -> Tensor:
    """The batch norms side by side, each module's output times ``scale[m]`` when given: folded into
    the affine transform, so that no output is saved for the product's backward."""
    first = modules[0]
    tracking = first.track_running_stats
    mean = torch.cat([m.running_mean for m in modules]) if tracking else None
    variance = torch.cat([m.running_var for m in modules]) if tracking else None
    weight = torch.cat([m.weight for m in modules]) if first.affine else None
    bias = torch.cat([m.bias for m in modules]) if first.affine else None
    if scale is not None:
        per_channel = scale.repeat_interleave(first.num_features)
        weight = per_channel if weight is None else weight * per_channel
        bias = None if bias is None else bias * per_channel
    output = F.batch_norm(x, mean, variance, weight, bias, first.training or not tracking, first.momentum, first.eps)
    if tracking and first.training:  # F.batch_norm updated the stacked statistics: hand each module its own
        torch._foreach_copy_([m.running_mean for m in modules], list(mean.chunk(len(modules))))
        torch._foreach_copy_([m.running_var for m in modules], list(variance.chunk(len(modules))))
        counting = [m.num_batches_tracked for m in modules if type(m).forward is nn.BatchNorm2d.forward]
        if counting:  # NNI's mixed batch norm counts no batches
            torch._foreach_add_(counting, 1)
    return output


class _StackedInputs:
    """A node's inputs side by side for a group of its edges, and their ReLU, each computed once for
    every candidate that reads them (most cell candidates begin with a ReLU)."""

    def __init__(self, inputs: Sequence[Tensor]):
        self.inputs = inputs
        self._computed: dict[tuple[tuple[int, ...], bool], Tensor] = {}

    def get(self, edges: tuple[int, ...], rectified: bool) -> Tensor:
        if (edges, rectified) not in self._computed:
            if rectified:
                stacked = F.relu(self.get(edges, False))
            else:
                stacked = torch.cat([self.inputs[e] for e in edges], 1) if len(edges) > 1 else self.inputs[edges[0]]
            self._computed[edges, rectified] = stacked
        return self._computed[edges, rectified]


def _weighted_side_by_side(modules: Sequence[nn.Module], inputs: _StackedInputs, edges: tuple[int, ...],
                           weights: Tensor) -> Tensor:
    """``sum over m of weights[m] * modules[m](inputs of edges[m])``, the modules side by side; the
    weights ride on a final batch norm's affine transform where there is one."""
    steps = _steps(modules)
    rectified = bool(steps) and isinstance(steps[0][0], nn.ReLU)
    if rectified:
        steps = steps[1:]
    folded = bool(steps) and isinstance(steps[-1][0], nn.BatchNorm2d)
    x = _run_steps(steps[:-1] if folded else steps, inputs.get(edges, rectified))
    if folded:
        return _layers_side_by_side(steps[-1], x, weights).unflatten(1, (len(modules), -1)).sum(1)
    return (x.unflatten(1, (len(modules), -1)) * weights.view(1, -1, 1, 1, 1)).sum(1)


def mix_edges(inputs: Sequence[Tensor], candidates: Sequence[Sequence[nn.Module]],
              weights: Sequence[Tensor], drawn: Sequence[int | None] | None = None) -> Tensor:
    """``sum over edges e and candidates o of weights[e][o] * candidates[e][o](inputs[e])``.

    ``weights[e]`` may hold more entries than the edge has candidates (the zero operation's, last),
    which add nothing. Candidates of one :func:`signature` on inputs of one shape run as one call.
    Where ``drawn[e]`` names a candidate (GDAS's rule), that candidate alone runs on edge ``e``,
    and the edge's other weights are added as they are (each one's gradient is then the sum of the
    node's output gradient).
    """
    total: Tensor | None = None
    unrun: Tensor | None = None  # the drawn edges' weights of the candidates they did not run
    groups: dict[Hashable, list[tuple[int, int]]] = {}
    for edge, (x, operations) in enumerate(zip(inputs, candidates)):
        chosen = None if drawn is None else drawn[edge]
        if chosen is not None:
            others = weights[edge].sum() - weights[edge][chosen]
            unrun = others if unrun is None else unrun + others
        for index, operation in enumerate(operations):
            if chosen is not None and index != chosen:
                continue
            key = signature(operation)
            if key is None:
                term = weights[edge][index] * operation(x)
                total = term if total is None else total + term
            else:
                groups.setdefault((key, x.shape, x.dtype), []).append((edge, index))
    stacked = _StackedInputs(inputs)
    for members in groups.values():
        term = _weighted_side_by_side([candidates[edge][index] for edge, index in members], stacked,
                                      tuple(edge for edge, _ in members),
                                      torch.stack([weights[edge][index] for edge, index in members]))
        total = term if total is None else total + term
    if total is None:  # every edge drew its zero operation: a map of zeros the candidates' shape
        assert candidates[0], 'a node with no candidate operations'
        with torch.no_grad():
            total = torch.zeros_like(candidates[0][0](inputs[0]))
    return total if unrun is None else total + unrun
