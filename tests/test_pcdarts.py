"""PC-DARTS: partial channels, channel shuffle, edge normalization, derivation."""

from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn
from nni.nas.evaluator.pytorch import LightningModule
from nni.nas.nn.pytorch import LayerChoice, ModelSpace
from nni.nas.oneshot.pytorch.strategy import DARTS

from nni_darts_ext import PCDARTS, ConfigError, make_strategy, trial
from nni_darts_ext.architecture import edge_label
from nni_darts_ext.config import split_parameters
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.supermodules.designed_cell import DesignedCell, DesignedLayer
from nni_darts_ext.supermodules.partial_channel import PartialChannelEdge, build_for_channel_fraction, channel_shuffle
from nni_darts_ext.nni_internals import architecture_weights

from .hub_experiment import hub_darts_labels, search_hub_darts
from .user_spaces import CHANNELS, USER_SPACES, search_once

K = 4


def supernet(strategy, width=16, cells=3):
    return strategy.mutate_model(load_space('darts_small', 1, 10, 8).search_space(Size(width, cells)))


def test_operations_inside_see_exactly_c_over_k_channels():
    net = supernet(PCDARTS(k=K))
    seen = {}

    def record(module, inputs, output, key):
        seen[key] = (inputs[0].shape[1], output.shape[1])

    hooks = []
    for name, module in net.named_modules():
        if isinstance(module, PartialChannelEdge):
            for op_name, op in module.items():
                hooks.append(op.register_forward_hook(lambda m, i, o, key=(name, op_name): record(m, i, o, key)))
    net(torch.randn(2, 1, 8, 8))
    assert len(seen) == sum(len(e) for e in net.modules() if isinstance(e, PartialChannelEdge))
    # cell 0 works on 16 channels; cells 1 and 2 reduce, doubling to 32 and 64
    for (name, op_name), (channels_in, channels_out) in seen.items():
        full = 16 * 2 ** int(name.split('.')[1])
        assert channels_in == channels_out == full // K, (name, op_name)


def test_node_outputs_have_the_full_channel_count_and_reduction_cells_halve_resolution():
    net = supernet(PCDARTS(k=K))
    outputs = {}
    for name, cell in net.named_modules():
        if isinstance(cell, DesignedCell):
            def recorded(node, inputs, edges, cell=cell, name=name):
                output = DesignedCell.node_output(cell, node, inputs, edges)
                outputs[name, node] = ([x.shape for x in inputs], output.shape)
                return output
            cell.node_output = recorded
    net(torch.randn(2, 1, 8, 8))
    assert len(outputs) == 3 * 4  # three cells of four nodes
    for (name, node), (shapes_in, shape_out) in outputs.items():
        assert all(shape[1] == shape_out[1] for shape in shapes_in), (name, node)
        reduces = name in ('cells.1', 'cells.2')
        # the cell's two inputs are at its input resolution, its nodes at its output resolution
        assert shape_out[-1] == (shapes_in[0][-1] // 2 if reduces else shapes_in[0][-1]), (name, node)


def test_k_1_mixes_every_channel_as_darts_does_with_edge_normalization(double_precision):
    """K=1: no bypass, no shuffle; each node ``sum_e b_e sum_o w_eo o(x_e)`` over all the channels."""
    torch.manual_seed(0)
    net = supernet(PCDARTS(k=1), width=4, cells=2).eval()
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            if '_arch_' in name:
                parameter.normal_()
    compared = []
    for cell in net.modules():
        if isinstance(cell, DesignedCell):
            def checked(node, inputs, edges, cell=cell):
                output = DesignedCell.node_output(cell, node, inputs, edges)
                mixtures = [sum(w * op(x) for w, op in zip(cell.operation_probabilities(edge_label(cell.label, node, e)),
                                                            edge.values()))
                            for e, (x, edge) in enumerate(zip(inputs, edges))]
                expected = sum(b * mixture for b, mixture in zip(cell.edge_weights(node), mixtures))
                assert all(conv.in_channels == x.shape[1] for x, edge in zip(inputs, edges)
                           for conv in edge.modules() if isinstance(conv, nn.Conv2d))
                torch.testing.assert_close(output, expected)
                compared.append(node)
                return output
            cell.node_output = checked
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert len(compared) == 2 * 4  # two cells of four nodes


def test_a_k_1_search_runs():
    def build():
        return load_space('darts_small', 1, 10, 8).search_space(Size(4, 3))

    architecture = search_once(make_strategy('pcdarts', k=1, warmup_epochs=0), build)
    assert set(architecture) == set(build().simplify())


def test_rebuilt_operations_have_k_times_fewer_channels_and_weights():
    darts_net, pc_net = supernet(DARTS()), supernet(PCDARTS(k=K))

    def operation_weights(net):
        return sum(p.numel() for name, p in net.named_parameters() if '.ops.' in name)
    # 1x1 convolutions shrink by K^2, depthwise ones and batch norms by K
    assert operation_weights(pc_net) <= operation_weights(darts_net) / K


def test_channel_shuffle_is_a_permutation_that_mixes_processed_and_bypassed_channels():
    channels = 16
    x = torch.arange(channels, dtype=torch.float).view(1, channels, 1, 1)
    shuffled = channel_shuffle(x, K).flatten().long()
    assert sorted(shuffled.tolist()) == list(range(channels))
    processed = set(range(channels // K))  # the slice the operations saw
    # every group of K consecutive output channels holds exactly one processed channel
    for start in range(0, channels, K):
        assert len(processed & set(shuffled[start:start + K].tolist())) == 1
    # so the next edge's first C/K channels are a mix of processed and bypassed ones
    first_slice = set(shuffled[:channels // K].tolist())
    assert first_slice & processed and first_slice - processed


def test_beta_gets_gradients_and_is_optimized_with_alpha():
    net = supernet(PCDARTS(k=K))
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    betas = {name: p for name, p in net.named_parameters() if '_arch_beta' in name}
    assert betas and all(p.grad is not None and p.grad.abs().sum() > 0 for p in betas.values())
    module = PCDARTS(k=K).configure_oneshot_module(_Holder(net))
    arch = {id(p) for p in module.arch_parameters()}
    assert all(id(p) in arch for p in betas.values())


class _Holder(LightningModule):
    def __init__(self, model):
        super().__init__()
        self.set_model(model)


def test_beta_alone_decides_which_inputs_a_node_keeps():
    net = supernet(PCDARTS(k=K))
    cell: DesignedCell = net.cells[0]
    with torch.no_grad():
        for alpha in architecture_weights(cell).values():
            alpha.zero_()  # every operation equally likely on every edge
        beta = cell._arch_beta['normal/4']  # node 4 reads nodes 0, 1, 2, 3
        beta.copy_(torch.tensor([0.0, 2.0, 0.0, 1.0]))
    exported = cell.export({})
    assert sorted(exported[f'normal/input_4_{slot}'][0] for slot in range(2)) == [1, 3]
    with torch.no_grad():
        beta.copy_(torch.tensor([3.0, 0.0, 2.0, 0.0]))
    exported = cell.export({})
    assert sorted(exported[f'normal/input_4_{slot}'][0] for slot in range(2)) == [0, 2]
    probabilities = cell.export_probs({})['normal/input_4']
    assert probabilities[0] > probabilities[2] > probabilities[1]


def test_export_prefers_a_strong_operation_times_edge_weight():
    net = supernet(PCDARTS(k=K))
    cell: DesignedCell = net.cells[0]
    names = cell.op_names
    with torch.no_grad():
        for alpha in architecture_weights(cell).values():
            alpha.zero_()
        architecture_weights(cell)['normal/2_0'][names.index('sep_conv_3x3')] = 3.0
        architecture_weights(cell)['normal/2_0'][-1] = 10.0  # the zero op: never exported, never scores
        architecture_weights(cell)['normal/2_1'][names.index('dil_conv_5x5')] = 1.0
    exported = cell.export({})
    chosen = {exported[f'normal/input_2_{s}'][0]: exported[f'normal/op_2_{s}'] for s in range(2)}
    assert chosen == {0: 'sep_conv_3x3', 1: 'dil_conv_5x5'}


def test_indivisible_channels_name_the_operation():
    with pytest.raises(ConfigError, match=r'normal/2_0/max_pool_3x3: BatchNorm2d has 6 channels, not divisible by k=4'):
        supernet(PCDARTS(k=4), width=6)
    with pytest.raises(ConfigError, match='k must be a positive integer'):
        PCDARTS(k=0)


def test_unknown_parametrised_module_is_refused():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(8))

    with pytest.raises(ConfigError, match='cannot rebuild Scale'):
        build_for_channel_fraction(nn.Sequential(nn.ReLU(), Scale()), 2, 'x')


def test_works_on_nni_hub_darts_and_on_a_users_layer_choice_space():
    hub = load_space('nni:DARTS', 1, 10, 8).search_space(Size(8, 3))
    net = PCDARTS(k=2).mutate_model(hub)
    assert any(isinstance(m, DesignedCell) for m in net.modules())
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)

    class Tiny(ModelSpace):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.choice = LayerChoice({'conv': nn.Conv2d(8, 8, 3, padding=1), 'pool': nn.MaxPool2d(3, 1, 1)},
                                      label='block')
            self.head = nn.Linear(8, 10)

        def forward(self, x):
            return self.head(self.choice(self.stem(x)).mean((2, 3)))

    net = PCDARTS(k=2).mutate_model(Tiny())
    assert isinstance(net.choice, DesignedLayer) and net.choice['conv'].in_channels == 4
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_list_candidates_keep_nnis_int_names_through_search_export_and_freeze():
    build = USER_SPACES['list LayerChoice']
    net = PCDARTS(k=2).mutate_model(build())
    assert isinstance(net.first, DesignedLayer) and net.first.names == [0, 1, 2]
    assert net.first[0][0].in_channels == net.first[1][0].in_channels == CHANNELS // 2
    with torch.no_grad():
        architecture_weights(net.first).copy_(torch.tensor([0.0, 1.0, 3.0]))
        architecture_weights(net.second).copy_(torch.tensor([2.0, 0.0]))
    architecture = {**net.first.export({}), **net.second.export({})}
    assert architecture == {'first': 2, 'second': 0}
    frozen = build().freeze(architecture)
    assert isinstance(frozen.first, nn.MaxPool2d) and isinstance(frozen.second[0], nn.Conv2d)

    searched = search_once(make_strategy('pcdarts', k=2, warmup_epochs=0), build)
    assert set(searched) == {'first', 'second'}
    assert searched['first'] in (0, 1, 2) and searched['second'] in (0, 1)


PC_OPTIONS = {'variant': 'pcdarts', 'k': 2, 'warmup_epochs': 0}


def test_search_exports_a_valid_architecture_reproducibly(quick_parameters, tmp_path):
    config, options = split_parameters({**quick_parameters, **PC_OPTIONS, 'search_epochs': 2})
    first = trial.run(config, options, tmp_path / 'a')
    second = trial.run(config, options, tmp_path / 'b')
    assert first['arch'] == second['arch']
    assert first['default'] == second['default']
    epochs = json.loads((tmp_path / 'a' / 'metrics.json').read_text())['epochs']
    entropies = [e['arch_entropy'] for e in epochs if e['phase'] == 'search']
    assert len(entropies) == 2 and entropies[0] != entropies[1]  # alpha and beta were trained


def test_warmup_longer_than_the_search_is_refused(quick_parameters, tmp_path):
    config, options = split_parameters({**quick_parameters, 'variant': 'pcdarts', 'k': 2})
    with pytest.raises(ConfigError, match=r'warmup_epochs \(15\) must be below search_epochs \(1\)'):
        trial.run(config, options, tmp_path)


def test_paper_defaults():
    strategy = make_strategy('pcdarts')
    assert (strategy.slots.cells.channels.k, strategy.arc_learning_rate, strategy.warmup_epochs) == (4, 6e-4, 15)


def test_pcdarts_runs_in_nas_experiment_on_nnis_hub_darts_space():
    """The Python route: NasExperiment with PCDARTS() on nni.nas.hub.pytorch.DARTS."""
    architecture, experiment = search_hub_darts(PCDARTS(k=2))
    assert set(architecture) == hub_darts_labels()
    assert any(isinstance(m, DesignedCell) for m in experiment.strategy.supernet.modules())


class WideningChoice(ModelSpace):
    """A ``LayerChoice`` whose candidates widen 4 channels to 8: nowhere to put the bypassed channels back."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.widen = LayerChoice({'conv3x3': nn.Conv2d(4, 8, 3, padding=1), 'conv1x1': nn.Conv2d(4, 8, 1)},
                                 label='widen')
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        return self.head(self.widen(self.stem(x)))


def test_candidates_that_change_the_channel_count_are_a_clear_error():
    message = ("widen: the candidates map (2, 8, 8) to (4, 8, 8); partial channels need candidates that keep the "
               "channel count and halve the resolution at most")
    with pytest.raises(ConfigError, match=re.escape(message)):
        search_once(make_strategy('pcdarts', k=2, warmup_epochs=0), WideningChoice)
