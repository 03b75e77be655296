"""A convolution whose second derivatives cost about one more backward pass, for a graph kept
for second-derivative products.

An exact Hessian or mixed product differentiates the graph of the gradient (``create_graph``),
and so the backward of each convolution's backward. Torch's (``_convolution_double_backward``)
runs a grouped convolution one group at a time: a node's batched candidates are grouped
convolutions of dozens to hundreds of groups, so each product would make thousands of small
calls. On the CPU, oneDNN's gradient to the input of a dilated depthwise convolution also takes
10 to 35 times its forward pass (``benchmarks/depthwise_gradients.py``). Here the products are convolutions of the whole tensors, and every gradient to a
convolution's input at stride 1 is a forward convolution (of the output's gradient with the
kernels flipped and transposed per group). A pass asks for only the gradients it needs (a mixed
product none of the kernels').

Only a graph built inside :func:`kept_for_second_derivatives` uses it; every other pass runs
torch's own convolution. Its first backward is torch's own computation (the gradient is the same
to the bit); only the products differ from torch's, by rounding.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from functools import reduce
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.autograd.graph import GradientEdge, get_gradient_edge

_KEPT = ContextVar('kept_for_second_derivatives', default=False)

Settings = tuple[list[int], list[int], list[int], int]
"""A convolution's stride, padding, dilation and groups."""


@contextmanager
def kept_for_second_derivatives() -> Iterator[None]:
    """Build the graphs of the forward passes inside with :func:`conv2d` 's own derivatives."""
    token = _KEPT.set(True)
    try:
        yield
    finally:
        _KEPT.reset(token)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int | Sequence[int],
           padding: int | Sequence[int], dilation: int | Sequence[int], groups: int) -> Tensor:
    """``F.conv2d``; inside :func:`kept_for_second_derivatives`, with this module's derivatives."""
    if not (_KEPT.get() and torch.is_grad_enabled() and isinstance(padding, (int, tuple, list))):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if torch.is_autocast_enabled(x.device.type):  # as autocast casts a convolution's inputs, outside the graph's node
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight, bias = (None if t is None else t.to(dtype) for t in (x, weight, bias))
    return _Convolution.apply(x, weight, bias, (_pair(stride), _pair(padding), _pair(dilation), groups))


def _pair(value: int | Sequence[int]) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def _torch_gradients(output_gradient: Tensor, x: Tensor, weight: Tensor, settings: Settings,
                     wanted: list[bool], bias_size: list[int] | None = None) -> tuple[Tensor | None, ...]:
    """Torch's own gradients of ``<output_gradient, conv(x, weight) + bias>``: to the input, the
    kernels and the bias, each where ``wanted``."""
    stride, padding, dilation, groups = settings
    return torch.ops.aten.convolution_backward(output_gradient, x, weight, bias_size, stride, padding, dilation,
                                               False, [0, 0], groups, wanted)


def _input_gradient(output_gradient: Tensor, x: Tensor, weight: Tensor, settings: Settings) -> Tensor:
    """``d <output_gradient, conv(x, weight)> / dx`` (``x`` read for its shape): at stride 1 a
    forward convolution."""
    stride, padding, dilation, groups = settings
    if stride != [1, 1]:
        return _torch_gradients(output_gradient, x, weight, settings, [True, False, False])[0]
    out_channels, per_group, height, width = weight.shape
    transposed = (weight.view(groups, out_channels // groups, per_group, height, width).transpose(1, 2)
                  .reshape(groups * per_group, out_channels // groups, height, width).flip(2, 3))
    reach = [d * (k - 1) - p for d, k, p in zip(dilation, (height, width), padding)]
    return F.conv2d(output_gradient, transposed, None, 1, reach, dilation, groups)


def _weight_gradient(output_gradient: Tensor, x: Tensor, weight: Tensor, settings: Settings) -> Tensor:
    """``d <output_gradient, conv(x, weight)> / dweight`` (``weight`` read for its shape)."""
    return _torch_gradients(output_gradient, x, weight, settings, [False, True, False])[1]


def _edges(tensors: Sequence[Tensor | None]) -> list[GradientEdge | None]:
    return [get_gradient_edge(t) if t is not None and t.requires_grad else None for t in tensors]


def _wanted(ctx, edges: Sequence[GradientEdge | None]) -> list[bool]:
    """Which of the inputs' gradients this backward pass uses: ``autograd.grad`` to some of the
    parameters runs only the nodes that lead to them (torch's own nodes compute only those
    outputs; a custom function must ask)."""
    return [needs and edge is not None and _runs(edge) for needs, edge in zip(ctx.needs_input_grad, edges)]


def _runs(edge: GradientEdge) -> bool:
    """Whether the running backward pass executes ``edge`` 's node (torch's own test, the one its
    ``register_multi_grad_hook`` makes)."""
    try:
        return torch._C._will_engine_execute_node(edge.node)
    except RuntimeError:  # a leaf under autograd.grad: torch cannot tell, so compute it
        return True


class _Convolution(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, settings: Settings) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.settings, ctx.has_bias = settings, bias is not None
        ctx.edges = _edges((x, weight, bias))
        stride, padding, dilation, groups = settings
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, output_gradient: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        if torch.is_grad_enabled():  # the gradient whose graph is kept: torch's own values
            return *_ConvolutionBackward.apply(output_gradient, x, weight, ctx.has_bias, ctx.settings), None
        wants_input, wants_weight, wants_bias = _wanted(ctx, ctx.edges)
        return (_input_gradient(output_gradient, x, weight, ctx.settings) if wants_input else None,
                _weight_gradient(output_gradient, x, weight, ctx.settings) if wants_weight else None,
                output_gradient.sum((0, 2, 3)) if wants_bias else None, None)


class _ConvolutionBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, output_gradient: Tensor, x: Tensor, weight: Tensor, has_bias: bool,
                settings: Settings) -> tuple[Tensor, Tensor, Tensor | None]:
        ctx.save_for_backward(output_gradient, x, weight)
        ctx.settings = settings
        ctx.edges = _edges((output_gradient, x, weight))
        return _torch_gradients(output_gradient, x, weight, settings, [True, True, has_bias],
                                [len(weight)] if has_bias else None)

    @staticmethod
    @once_differentiable
    def backward(ctx, along_input: Tensor | None, along_weight: Tensor | None,
                 along_bias: Tensor | None) -> tuple[Tensor | None, ...]:
        """The input gradient is linear in (output gradient, kernels), the kernels' in (output gradient,
        input): their derivatives along a direction are convolutions of the same shapes."""
        output_gradient, x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.settings
        wants_output_gradient, wants_input, wants_weight = _wanted(ctx, ctx.edges)
        terms = []
        if wants_output_gradient:
            terms = [F.conv2d(a, b, None, stride, padding, dilation, groups)
                     for a, b in ((along_input, weight), (x, along_weight)) if a is not None and b is not None]
            if along_bias is not None:
                terms.append(along_bias.view(1, -1, 1, 1).expand_as(output_gradient))
        of_output_gradient = reduce(torch.add, terms) if terms else None
        of_input = (_input_gradient(output_gradient, x, along_weight, ctx.settings)
                    if wants_input and along_weight is not None else None)
        of_weight = (_weight_gradient(output_gradient, along_input, weight, ctx.settings)
                     if wants_weight and along_input is not None else None)
        return of_output_gradient, of_input, of_weight, None, None
