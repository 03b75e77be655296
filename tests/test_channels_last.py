"""The channels-last layout computes what the default layout does, on the real hub supernets."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from nni_darts_ext import ConfigError, make_strategy
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.training import ClassifierModule


pytestmark = pytest.mark.usefixtures('double_precision')  # the layouts sum in different orders


def classifier(net: torch.nn.Module, channels_last: bool) -> ClassifierModule:
    module = ClassifierModule(channels_last=channels_last)
    module.set_model(copy.deepcopy(net))
    module.setup('fit')
    return module


@pytest.mark.parametrize('variant, options', [('darts', {}), ('pcdarts', {'k': 4}), ('pdarts', {})])
def test_channels_last_gives_the_default_layout_s_loss_and_gradients(variant, options):
    torch.manual_seed(0)
    space = load_space('nni:DARTS', 3, 10, 16).search_space(Size(8, 5))
    net = make_strategy(variant, **options).mutate_model(space)
    images, labels = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    results = []
    for channels_last in (False, True):
        module = classifier(net, channels_last)
        convolution = next(p for name, p in module.named_parameters() if p.dim() == 4 and p.shape[-1] > 1)
        assert convolution.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert convolution.is_contiguous() != channels_last
        torch.manual_seed(1)
        loss = F.cross_entropy(module(images), labels)
        names, parameters = zip(*module.named_parameters())
        results.append((loss, dict(zip(names, torch.autograd.grad(loss, parameters, allow_unused=True)))))
    (loss, gradients), (loss_last, gradients_last) = results
    torch.testing.assert_close(loss_last, loss, rtol=1e-9, atol=1e-12)
    assert any('_arch_' in name for name in gradients)
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradients_last[name], gradient, rtol=1e-9, atol=1e-12, msg=name)



def test_a_narrow_strided_pointwise_convolution_is_refused_before_its_cpu_backward_corrupts_memory():
    # torch 2.14's oneDNN backward of a channels-last 1x1 stride-2 convolution of 2 to 7 input
    # channels writes out of bounds on some CPUs (float32 only): FactorizedReduce at width 8 and k=4 has 4
    images = torch.randn(2, 3, 16, 16, dtype=torch.float32)
    narrow = load_space('nni:DARTS', 3, 10, 16).search_space(Size(8, 3))
    module = classifier(make_strategy('pcdarts', k=4).mutate_model(narrow), channels_last=True).float()
    with pytest.raises(ConfigError, match=r'^channels_last: \S+ is a strided 1x1 convolution of 4 input channels.*'
                                          r'set channels_last false, or widen the space'):
        module(images)
    in_double = classifier(module.model, channels_last=True).double()  # oneDNN's path is float32's alone
    assert in_double(images.double()).dtype == torch.float64
    wide = load_space('nni:DARTS', 3, 10, 16).search_space(Size(32, 3))  # 8 channels through each
    module = classifier(make_strategy('pcdarts', k=4).mutate_model(wide), channels_last=True).float()
    F.cross_entropy(module(images), torch.tensor([0, 1])).backward()
