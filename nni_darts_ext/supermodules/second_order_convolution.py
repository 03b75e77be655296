"""A convolution whose second derivatives cost about one more backward pass, for a graph kept
for second-derivative products.

An exact Hessian or mixed product differentiates the graph of the gradient (``create_graph``),
and so the backward of each convolution's backward. Torch's (``_convolution_double_backward``)
runs a grouped convolution one group at a time: a node's batched candidates are grouped
convolutions of dozens to hundreds of groups, so each product would make thousands of small
calls. On the CPU, oneDNN's gradient to the input of a dilated depthwise convolution also takes
10 to 35 times its forward pass, and to the kernels of a 5x5 or dilated one 10 to 40 times a plain
3x3 one's (``benchmarks/depthwise_gradients.py``). Here the products are convolutions of the whole
tensors; every gradient to a convolution's input at stride 1 is a forward convolution (of the
output's gradient with the kernels flipped and transposed per group); on the CPU, a depthwise
convolution's kernel gradient is put together from 3x3 ones. A pass asks for only the gradients
it needs (a mixed product none of the kernels').

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
    if _in_three_by_three_pieces(x, weight, settings):
        return _depthwise_weight_gradient(output_gradient, x, weight.shape[2:], settings[2])
    return _torch_gradients(output_gradient, x, weight, settings, [False, True, False])[1]


def _in_three_by_three_pieces(x: Tensor, weight: Tensor, settings: Settings) -> bool:
    """Whether to take a depthwise convolution's kernel gradient as 3x3 ones: on the CPU, oneDNN's
    is fast for plain 3x3 kernels only, and 10 to 40 times slower for 5x5 and dilated ones
    (``benchmarks/depthwise_gradients.py``). The pieces need a stride of 1, odd kernels padded to
    keep the image's size, and an image size the dilation divides."""
    stride, padding, dilation, groups = settings
    channels, per_group, *kernel = weight.shape
    return (x.device.type == 'cpu' and per_group == 1 and channels == groups == x.shape[1] and stride == [1, 1]
            and (kernel, dilation) != ([3, 3], [1, 1])
            and all(k % 2 and p == d * (k - 1) // 2 and size % d == 0
                    for k, p, d, size in zip(kernel, padding, dilation, x.shape[2:])))


def _depthwise_weight_gradient(output_gradient: Tensor, x: Tensor, kernel: Sequence[int],
                               dilation: Sequence[int]) -> Tensor:
    """The kernel gradient of a depthwise convolution (stride 1, odd kernels, the image's size kept)
    from 3x3 kernel gradients.

    A convolution dilated by ``d`` is an undilated one on each of the ``d x d`` interleaved
    subimages (its phases), side by side in the batch. A kernel wider than 3 is 3x3 blocks, each
    the 3x3 kernel gradient of the input shifted by the block's offset."""
    if dilation != [1, 1]:
        output_gradient, x = (_phases(t, dilation) for t in (output_gradient, x))
    if list(kernel) == [3, 3]:
        return _three_by_three_gradient(output_gradient, x, [1, 1])
    height, width = x.shape[2:]
    reach = [(k - 1) // 2 for k in kernel]
    beyond = [-k % 3 for k in kernel]  # the last block's rows and columns past the kernel
    padded = F.pad(x, (reach[1], reach[1] + beyond[1], reach[0], reach[0] + beyond[0]))
    blocks = [torch.cat([_three_by_three_gradient(output_gradient, padded[:, :, row:row + height + 2,
                                                                         column:column + width + 2].contiguous(),
                                                  [0, 0])
                         for column in range(0, kernel[1], 3)], 3)
              for row in range(0, kernel[0], 3)]
    return torch.cat(blocks, 2)[:, :, :kernel[0], :kernel[1]]


def _three_by_three_gradient(output_gradient: Tensor, x: Tensor, padding: list[int]) -> Tensor:
    """The kernel gradient of a 3x3 depthwise convolution of stride 1 (oneDNN's fast one)."""
    channels = x.shape[1]
    return _torch_gradients(output_gradient, x, x.new_empty(channels, 1, 3, 3), ([1, 1], padding, [1, 1], channels),
                            [False, True, False])[1]


def _phases(images: Tensor, dilation: Sequence[int]) -> Tensor:
    """The ``d x d`` subimages of every image, ``images[..., i::d, j::d]``, as a batch ``d * d`` times larger."""
    batch, channels, height, width = images.shape
    rows, columns = dilation
    return (images.view(batch, channels, height // rows, rows, width // columns, columns)
            .permute(3, 5, 0, 1, 2, 4).reshape(rows * columns * batch, channels, height // rows, width // columns))


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
