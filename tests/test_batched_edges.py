"""Each candidate run once for all of a node's edges: the same loss, gradients and batch-norm
statistics as a loop over the edges, on the real hub DARTS supernet."""

from __future__ import annotations

import copy
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from nni.nas.hub.pytorch.nasnet import DilConv, FactorizedReduce, SepConv
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell

from nni_darts_ext import make_strategy
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.supermodules.batched_edges import mix_edges, run_side_by_side, signature
from nni_darts_ext.supermodules.darts_cell import DartsCell
from nni_darts_ext.supermodules.partial_channel import channel_shuffle
from nni_darts_ext.supermodules.designed_cell import SkipConnectDropout
from nni_darts_ext.nni_internals import architecture_weights, normalization

TOLERANCE = {'rtol': 1e-9, 'atol': 1e-12}
"""In double precision: the two orders of summation agree to rounding there, while in float32 batch
norm over PC-DARTS's 2-channel edges of 8 images amplifies rounding to 1e-3 on some processors."""

pytestmark = pytest.mark.usefixtures('double_precision')


def edge_by_edge(cell: DartsCell, node: int, inputs: list[torch.Tensor], edges: nn.ModuleList) -> torch.Tensor:
    """The node's mixture as a loop over its edges and their operations, one call per operation."""
    total = 0
    for source, (x, edge) in enumerate(zip(inputs, edges)):
        weights = normalization(cell)(architecture_weights(cell)[f'{cell.label}/{node}_{source}'])
        if cell.channels is None:
            output = sum(w * op(x) for w, op in zip(weights, edge.values()))
        else:
            k = cell.channels.k
            processed, bypassed = x.split([x.shape[1] // k, x.shape[1] - x.shape[1] // k], 1)
            mixed = sum(w * op(processed) for w, op in zip(weights, edge.values()))
            if bypassed.shape[-1] != mixed.shape[-1]:
                bypassed = F.max_pool2d(bypassed, 2, 2)
            output = channel_shuffle(torch.cat([mixed, bypassed], 1), k)
        total = total + cell.edge_weights(node)[source] * output
    return total


def hub_supernet(variant: str, **options):
    torch.manual_seed(0)
    space = load_space('nni:DARTS', 3, 10, 16).search_space(Size(8, 5))
    return make_strategy(variant, **options).mutate_model(space)


def with_forward(net: nn.Module, node_output) -> nn.Module:
    """A copy of ``net`` whose cells compute each node by ``node_output``."""
    copied = copy.deepcopy(net)
    for module in copied.modules():
        if isinstance(module, DartsCell):
            module.node_output = types.MethodType(node_output, module)
    return copied


def loss_and_gradients(net: nn.Module, images: torch.Tensor, labels: torch.Tensor):
    torch.manual_seed(1)  # the same dropout draws in both networks
    loss = F.cross_entropy(net(images), labels)
    names, parameters = zip(*[(n, p) for n, p in net.named_parameters() if p.requires_grad])
    return loss, dict(zip(names, torch.autograd.grad(loss, parameters, allow_unused=True)))


def set_skip_dropout(net: nn.Module, rate: float) -> None:
    for module in net.modules():
        if isinstance(module, SkipConnectDropout):
            module.p = rate


VARIANTS = {
    'darts': {},
    'pcdarts': {'k': 4},
    'pdarts': {},
    'pdarts+pcdarts': {'k': 2},
}


@pytest.mark.parametrize('variant', VARIANTS)
def test_the_batched_node_gives_the_loop_s_loss_gradients_and_statistics(variant):
    net = hub_supernet(variant, **VARIANTS[variant])
    set_skip_dropout(net, 0.3)  # P-DARTS's dropout draws in the same order either way
    reference = with_forward(net, edge_by_edge)
    images, labels = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))

    loss, gradients = loss_and_gradients(net, images, labels)
    reference_loss, reference_gradients = loss_and_gradients(reference, images, labels)
    torch.testing.assert_close(loss, reference_loss, **TOLERANCE)
    assert gradients.keys() == reference_gradients.keys()
    architecture = [name for name in gradients if '_arch_' in name]
    assert architecture and all(gradients[name] is not None for name in architecture)
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, reference_gradients[name], **TOLERANCE, msg=name)
    buffers = dict(reference.named_buffers())
    for name, buffer in net.named_buffers():
        torch.testing.assert_close(buffer, buffers[name], **TOLERANCE, msg=name)

    net.eval(), reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(images), reference(images), **TOLERANCE)


def test_darts_cells_compute_nni_s_own_cell():
    net = hub_supernet('darts')
    reference = copy.deepcopy(net)
    for module in reference.modules():
        if isinstance(module, DartsCell):
            module.forward = types.MethodType(DifferentiableMixedCell.forward, module)
    images, labels = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    loss, gradients = loss_and_gradients(net, images, labels)
    reference_loss, reference_gradients = loss_and_gradients(reference, images, labels)
    torch.testing.assert_close(loss, reference_loss, **TOLERANCE)
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, reference_gradients[name], **TOLERANCE, msg=name)


def test_cell_candidates_run_side_by_side_and_others_alone():
    assert signature(SepConv(8, 8, 3, 1, 1)) == signature(SepConv(8, 8, 3, 1, 1))
    assert signature(SepConv(8, 8, 3, 1, 1)) != signature(SepConv(8, 8, 3, 2, 1))  # another stride
    assert signature(DilConv(8, 8, 3, 1, 2, 2)) != signature(SepConv(8, 8, 3, 1, 1))
    assert signature(nn.MaxPool2d(3, 1, 1)) != signature(nn.AvgPool2d(3, 1, 1))
    hooked = nn.ReLU()
    assert signature(hooked) is not None
    hooked.register_forward_hook(lambda *_: None)  # after its structure was read: still seen
    inner_hook = SepConv(8, 8, 3, 1, 1)
    assert signature(inner_hook) is not None
    inner_hook[2].register_forward_pre_hook(lambda *_: None)
    assert signature(inner_hook) is None
    for alone in (FactorizedReduce(8, 8), nn.Dropout(0.1), SkipConnectDropout(), hooked,
                  nn.BatchNorm2d(8, momentum=None)):
        assert signature(alone) is None, alone


def test_side_by_side_equals_each_module_on_its_own_channels():
    torch.manual_seed(0)
    modules = [SepConv(4, 4, 3, 2, 1) for _ in range(3)]
    inputs = [torch.randn(5, 4, 8, 8) for _ in modules]
    copies = copy.deepcopy(modules)
    together = run_side_by_side(modules, torch.cat(inputs, 1))
    alone = torch.cat([m(x) for m, x in zip(copies, inputs)], 1)
    torch.testing.assert_close(together, alone, **TOLERANCE)
    for module, reference in zip(modules, copies):  # each batch norm keeps its own statistics
        for buffer, expected in zip(module.buffers(), reference.buffers()):
            torch.testing.assert_close(buffer, expected, **TOLERANCE)


def test_mix_edges_weighs_every_candidate_and_ignores_the_zero_operation_s_weight():
    torch.manual_seed(0)
    candidates = [[nn.Identity(), nn.AvgPool2d(3, 1, 1), nn.Conv2d(2, 2, 3, padding=1, bias=True)] for _ in range(3)]
    inputs = [torch.randn(2, 2, 4, 4) for _ in candidates]
    weights = [torch.rand(4) for _ in candidates]  # the zero operation's weight last
    expected = sum(w * op(x) for x, ops, ws in zip(inputs, candidates, weights) for w, op in zip(ws, ops))
    torch.testing.assert_close(mix_edges(inputs, candidates, weights), expected, **TOLERANCE)


def saved_activation_bytes(compute) -> int:
    """The bytes of the batch-sized tensors (activations, not weights) that ``compute`` 's graph keeps
    for its backward pass, each storage once."""
    storages = {}

    def pack(tensor):
        if tensor.dim() == 4 and tensor.shape[0] == BATCH:
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        compute()
    return sum(storages.values())


BATCH = 3


def test_weighing_and_the_shared_relu_keep_nothing_beyond_the_candidates_own_activations():
    torch.manual_seed(0)
    sep_conv, dil_conv = SepConv(4, 4, 3, 1, 1), DilConv(4, 4, 3, 1, 2, 2)
    x = torch.randn(BATCH, 4, 8, 8, requires_grad=True)
    weights = torch.rand(3, requires_grad=True)
    alone = saved_activation_bytes(lambda: sep_conv(x)) + saved_activation_bytes(lambda: dil_conv(x))
    mixed = saved_activation_bytes(lambda: mix_edges([x], [[sep_conv, dil_conv]], [weights]))
    # one ReLU of the input for both; no weighted output kept for the weights' gradient
    assert mixed == alone - x.numel() * x.element_size()
