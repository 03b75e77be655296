"""The convolution of graphs kept for second-derivative products against torch's own, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nni_darts_ext import make_strategy
from nni_darts_ext.second_derivatives import DoubleBackward, GradientGraph
from nni_darts_ext.supermodules import second_order_convolution
from nni_darts_ext.supermodules.second_order_convolution import conv2d, kept_for_second_derivatives

from .test_stabilized import BatchLoss, quick_start_supernet

SETTINGS = {  # in channels, out channels, kernel, stride, padding, dilation, groups, bias
    'depthwise dilated 5x5': (12, 12, 5, 1, 4, 2, 12, False),
    'depthwise 3x3 stride 2': (6, 6, 3, 2, 1, 1, 6, False),
    'depthwise dilated 3x3 stride 2': (6, 6, 3, 2, 2, 2, 6, False),
    'grouped 1x1': (16, 32, 1, 1, 0, 1, 4, False),
    'dense 3x3 with bias': (4, 6, 3, 1, 1, 1, 1, True),
    'grouped 3x3 stride 2, odd size, no padding': (4, 8, 3, 2, 0, 1, 2, False),
    'asymmetric': (6, 6, (3, 5), 1, (1, 4), (1, 2), 3, False),
}


def gradients_and_products(convolution, x, weight, bias, settings):
    """The gradient of a loss through ``convolution``, and the gradient of a function of that gradient."""
    stride, padding, dilation, groups = settings
    output = convolution(x, weight, bias, stride, padding, dilation, groups)
    loss = (output.tanh() * torch.linspace(-1, 1, output.numel()).view_as(output)).sum()
    parameters = [x, weight] + ([bias] if bias is not None else [])
    first = torch.autograd.grad(loss, parameters, create_graph=True)
    second = torch.autograd.grad(sum((g.sin() * g).sum() for g in first), parameters)
    return [g.detach() for g in first], second


def assert_torch_s_gradient_and_products(x, weight, bias, settings):
    """The kept convolution's gradient is torch's to the bit and its products torch's to rounding."""
    expected_first, expected_second = gradients_and_products(F.conv2d, x, weight, bias, settings)
    with kept_for_second_derivatives():
        first, second = gradients_and_products(conv2d, x, weight, bias, settings)
    for got, expected in zip(first, expected_first):
        assert torch.equal(got, expected)
    for got, expected in zip(second, expected_second):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('setting', SETTINGS.values(), ids=SETTINGS.keys())
def test_products_are_torch_s_to_rounding_and_the_gradient_is_torch_s_to_the_bit(double_precision, setting):
    in_channels, out_channels, kernel, stride, padding, dilation, groups, has_bias = setting
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    torch.manual_seed(0)
    x = torch.randn(3, in_channels, 9, 11, requires_grad=True)
    weight = torch.randn(out_channels, in_channels // groups, *kernel, requires_grad=True)
    bias = torch.randn(out_channels, requires_grad=True) if has_bias else None
    settings = (stride, padding, dilation, groups)
    assert_torch_s_gradient_and_products(x, weight, bias, settings)


DEPTHWISE_IN_PIECES = {  # kernel, dilation: on 6x12 images, whose sizes every dilation divides
    '5x5': (5, 1), '7x7': (7, 1), '1x1': (1, 1), 'dilated 3x3': (3, 2), 'dilated 5x5': (5, 2),
    'dilated by 3': (3, 3), '5x3 dilated 2x1': ((5, 3), (2, 1)),
}


@pytest.mark.parametrize('kernel, dilation', DEPTHWISE_IN_PIECES.values(), ids=DEPTHWISE_IN_PIECES.keys())
def test_a_depthwise_kernel_gradient_from_three_by_three_ones_gives_torch_s_products(double_precision, kernel,
                                                                                     dilation):
    kernel, dilation = ((k, k) if isinstance(k, int) else k for k in (kernel, dilation))
    torch.manual_seed(0)
    x, weight = torch.randn(3, 5, 6, 12, requires_grad=True), torch.randn(5, 1, *kernel, requires_grad=True)
    settings = ([1, 1], [d * (k - 1) // 2 for k, d in zip(kernel, dilation)], list(dilation), 5)
    assert second_order_convolution._in_three_by_three_pieces(x, weight, settings)
    assert_torch_s_gradient_and_products(x, weight, None, settings)


def test_a_depthwise_kernel_gradient_from_three_by_three_ones_reads_channels_last_tensors(double_precision):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 6, 12).contiguous(memory_format=torch.channels_last).requires_grad_()
    weight = torch.randn(5, 1, 5, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    settings = ([1, 1], [4, 4], [2, 2], 5)
    assert_torch_s_gradient_and_products(x, weight, None, settings)


def test_only_a_depthwise_kernel_other_than_oneDNN_s_fast_one_goes_in_pieces():
    x = torch.randn(2, 4, 8, 8)
    depthwise_3x3, depthwise_5x5 = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 5, 5)
    assert not second_order_convolution._in_three_by_three_pieces(x, depthwise_3x3, ([1, 1], [1, 1], [1, 1], 4))
    assert second_order_convolution._in_three_by_three_pieces(x, depthwise_5x5, ([1, 1], [2, 2], [1, 1], 4))
    for settings in (([2, 2], [2, 2], [1, 1], 4),  # strided
                     ([1, 1], [0, 0], [1, 1], 4),  # the image shrinks
                     ([1, 1], [6, 6], [3, 3], 4)):  # 3 does not divide 8
        assert not second_order_convolution._in_three_by_three_pieces(x, depthwise_5x5, settings)
    assert not second_order_convolution._in_three_by_three_pieces(x, torch.randn(8, 1, 5, 5),  # two per channel
                                                                  ([1, 1], [2, 2], [1, 1], 4))


def test_outside_the_context_it_is_torch_s_own_convolution():
    x, weight = torch.randn(2, 4, 5, 5, requires_grad=True), torch.randn(4, 1, 3, 3, requires_grad=True)
    assert type(conv2d(x, weight, None, 1, 1, 1, 4).grad_fn).__name__ == 'ConvolutionBackward0'
    with kept_for_second_derivatives():
        assert type(conv2d(x, weight, None, 1, 1, 1, 4).grad_fn).__name__ != 'ConvolutionBackward0'
        with torch.no_grad():
            assert conv2d(x, weight, None, 1, 1, 1, 4).grad_fn is None


@pytest.fixture(scope='module')
def supernet_products():
    """The quick-start supernet's training loss in float64, its kept gradient graph built with this
    module's convolution (its batched candidates') and with torch's own, and a vector over the weights."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        net, batch = quick_start_supernet(make_strategy('stabilized'))
        net.double()
        alphas = [p for n, p in net.named_parameters() if '_arch_' in n]
        weights = [p for n, p in net.named_parameters() if '_arch_' not in n]
        loss = BatchLoss((batch['train'][0].double(), batch['train'][1]))
        kept = DoubleBackward().at(lambda: loss(net(loss.images)), weights, alphas)
        torchs = GradientGraph(loss(net(loss.images)), weights, alphas)
        torch.manual_seed(1)
        vector = [torch.randn_like(w) for w in weights]
    finally:
        torch.set_default_dtype(previous)
    return kept, torchs, vector


def test_the_supernet_s_products_are_torch_s_to_rounding(supernet_products):
    kept, torchs, vector = supernet_products
    for got, expected in zip(kept.weight_gradient(), torchs.weight_gradient()):
        assert torch.equal(got, expected)
    for product in ('hessian_product', 'mixed_product'):
        got, expected = getattr(kept, product)(vector), getattr(torchs, product)(vector)
        got, expected = torch.cat([g.flatten() for g in got]), torch.cat([e.flatten() for e in expected])
        assert float((got - expected).norm() / expected.norm()) < 1e-12


def test_a_mixed_product_computes_no_kernel_gradient(supernet_products, monkeypatch):
    kept, _, vector = supernet_products
    calls = []
    weight_gradient = second_order_convolution._weight_gradient
    monkeypatch.setattr(second_order_convolution, '_weight_gradient',
                        lambda *arguments: calls.append(1) or weight_gradient(*arguments))
    kept.mixed_product(vector)
    assert not calls
    kept.hessian_product(vector)
    assert calls


@pytest.mark.parametrize('size', [7, 8], ids=["torch's kernel gradient", 'from 3x3 ones'])
def test_under_autocast_the_gradient_is_torch_s_and_the_products_within_bfloat16_s_rounding(size):
    torch.manual_seed(0)
    x, weight = torch.randn(2, 8, size, size, requires_grad=True), torch.randn(8, 1, 5, 5, requires_grad=True)
    settings = (1, 4, 2, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        expected_first, expected_second = gradients_and_products(F.conv2d, x, weight, None, settings)
        with kept_for_second_derivatives():
            first, second = gradients_and_products(conv2d, x, weight, None, settings)
    for got, expected in zip(first, expected_first):
        assert got.dtype == torch.float32 and torch.equal(got, expected)
    for got, expected in zip(second, expected_second):
        assert got.dtype == torch.float32
        assert float((got - expected).norm() / expected.norm()) < 2e-2
