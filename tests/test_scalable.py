"""Scalable-DARTS: factored spaces, factorized architecture parameters, export, alternation."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from nni.nas.evaluator.pytorch import LightningModule
from nni.nas.nn.pytorch import Cell, LayerChoice, ModelSpace
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer
from nni.nas.oneshot.pytorch.strategy import DARTS

from nni_darts_ext import ConfigError, RandomArchitecture, ScalableDARTS, architecture, make_strategy, trial
from nni_darts_ext.config import split_parameters
from nni_darts_ext.spaces import SEARCH_SPACES_DIR, load_space
from nni_darts_ext.spaces.factors import (ACTIVATED_OPERATIONS, ACTIVATIONS, ActivatedOperation, build_operation,
                                          combination, factor_values, split_combination)
from nni_darts_ext.spaces.operations import OPERATIONS
from nni_darts_ext.strategies.scalable import FactorizedCandidates, FactorTurns
from nni_darts_ext.supermodules.factorized import (EdgeWeights, FactorizedCell, FactorizedEdge, FactorizedLayer,
                                                   ProductEdge)
from nni_darts_ext.nni_internals import ALPHA, architecture_weights

from .user_spaces import CHANNELS, USER_SPACES, head, part, search_once, stem

SMALL = yaml.safe_load((SEARCH_SPACES_DIR / 'darts_small_factorized.yml').read_text())
ACTIVATION_NAMES, CONV_NAMES = SMALL['factors']['activation'], SMALL['factors']['conv']
CANDIDATES = len(SMALL['operations']) + len(ACTIVATION_NAMES) * len(CONV_NAMES)  # 3 + 32, the zero op aside
LINEAR_BODIES = ['dil_conv_3x3', 'dil_conv_5x5', 'conv_3x3', 'conv_1x1']  # one activation each, then affine


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second thread costs more than it gives, and the cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_space(tmp_path: Path, **changes):
    """darts_small_factorized's candidates in one (reduction) cell of two nodes (5 edges): quick to build."""
    spec = {**SMALL, 'nodes': 2, 'cells': 1, 'width': 4, **changes}
    spec['evaluation'] = {'cells': spec['cells'], 'width': 4}
    path = tmp_path / 'tiny_factorized.yml'
    path.write_text(yaml.safe_dump(spec))
    return load_space(str(path), 1, 10, 8)


def edges_of(cell) -> list[tuple[int, int]]:
    return [(node, source) for node in cell.output_node_indices for source in range(node)]


def test_every_factor_value_is_known_and_the_activated_convolutions_are_nnis():
    assert set(ACTIVATION_NAMES) == set(ACTIVATIONS) and len(ACTIVATION_NAMES) == 8 and len(CONV_NAMES) == 4
    assert set(ACTIVATED_OPERATIONS) == {'conv_1x1', 'conv_3x3', 'sep_conv_3x3', 'sep_conv_5x5', 'sep_conv_7x7',
                                         'dil_conv_3x3', 'dil_conv_5x5', 'dil_sep_conv_3x3', 'conv_3x1_1x3',
                                         'conv_7x1_1x7'}
    paper = yaml.safe_load((SEARCH_SPACES_DIR / 'darts_factorized.yml').read_text())
    assert paper['factors'] == SMALL['factors'] and paper['operations'] == SMALL['operations']
    assert (paper['nodes'], paper['cells'], paper['width']) == (4, 8, 16)


def test_a_combination_is_nnis_operation_with_its_activations_swapped():
    swish_sep = build_operation('swish+sep_conv_3x3', 4, 1, True)
    relu_sep = OPERATIONS['sep_conv_3x3'](4, 1, True)
    assert swish_sep.state_dict().keys() == relu_sep.state_dict().keys()
    assert [type(layer) for layer in swish_sep] == [nn.SiLU if isinstance(layer, nn.ReLU) else type(layer)
                                                    for layer in relu_sep]
    assert swish_sep.activation_slots == (0, 4)
    x = torch.randn(2, 4, 6, 6)
    assert torch.equal(swish_sep(x), swish_sep.body(swish_sep[0](x), swish_sep[0]))
    assert split_combination('swish+sep_conv_3x3') == ('swish', 'sep_conv_3x3')
    assert split_combination('avg_pool_3x3') is None


def test_architecture_parameters_are_the_sum_of_the_factors_not_their_product(tmp_path):
    space = tiny_space(tmp_path)
    scalable, darts = ScalableDARTS().mutate_model(space.search_space()), DARTS().mutate_model(space.search_space())
    cell: FactorizedCell = scalable.cells[0]
    edges = edges_of(cell)
    per_edge = len(ACTIVATION_NAMES) + len(CONV_NAMES) + (1 + len(SMALL['operations']) + 1)  # 8 + 4 + 5 = 17
    assert sum(p.numel() for p in cell.arch_parameters()) == len(edges) * per_edge
    factor_sizes = {factor: {p.numel() for p in parameters} for factor, parameters in cell.factor_parameters().items()}
    assert factor_sizes == {'activation': {8}, 'conv': {4}}
    # NNI's DARTS on the same space: one parameter per candidate, 32 combinations + 3 + the zero op
    explicit = [p for name, p in darts.named_parameters() if ALPHA in name]
    assert sum(p.numel() for p in explicit) == len(edges) * (CANDIDATES + 1)


def test_combination_weights_sum_to_one_and_are_products_of_the_factors(tmp_path):
    cell: FactorizedCell = ScalableDARTS().mutate_model(tiny_space(tmp_path).search_space()).cells[0]
    for node, source in edges_of(cell):  # at the start, every candidate has DARTS's uniform weight
        assert torch.allclose(cell.candidate_weights(node, source), torch.full((CANDIDATES + 1,), 1 / (CANDIDATES + 1)),
                              rtol=0.02)  # the logits' 1e-3 noise
    torch.manual_seed(0)
    with torch.no_grad():
        for alpha in cell.arch_parameters():
            alpha.copy_(torch.randn_like(alpha) * 3)
    for node, source in edges_of(cell):
        weights = cell.candidate_weights(node, source)
        assert weights.shape == (CANDIDATES + 1,) and torch.isclose(weights.sum(), torch.tensor(1.0))
        edge = cell.edge_weights(node, source)
        name = combination('gelu', 'dil_conv_5x5')
        gelu, dil_conv_5x5 = ACTIVATION_NAMES.index('gelu'), CONV_NAMES.index('dil_conv_5x5')
        expected = edge.group[0] * edge.activation[gelu] * edge.conv[dil_conv_5x5]
        assert torch.isclose(weights[cell.op_names.index(name)], expected)
        skip = 1 + SMALL['operations'].index('skip_connect')
        assert torch.isclose(weights[cell.op_names.index('skip_connect')], edge.group[skip])


def test_weight_decay_alone_leaves_the_candidate_weights_uniform(tmp_path):
    """The log(A x O) start of the factored group is a constant beside the parameter, so the architecture
    optimizer's weight decay (NNI's DARTS: Adam, 1e-3) does not pull the combinations down."""
    net = ScalableDARTS().mutate_model(tiny_space(tmp_path).search_space())
    optimizer = ScalableDARTS().configure_oneshot_module(_Holder(net)).configure_architecture_optimizers()
    settings = optimizer.defaults
    assert isinstance(optimizer, torch.optim.Adam)
    assert (settings['lr'], tuple(settings['betas']), settings['weight_decay']) == (3e-4, (0.5, 0.999), 1e-3)
    cell: FactorizedCell = net.cells[0]
    assert torch.equal(cell.group_offset, torch.tensor([math.log(len(ACTIVATION_NAMES) * len(CONV_NAMES)), 0, 0, 0, 0]))
    assert all(alpha.abs().max() < 1e-2 for alpha in cell.arch_parameters())  # 1e-3 noise around zero
    uniform = torch.full((CANDIDATES + 1,), 1 / (CANDIDATES + 1))
    for edge in edges_of(cell):
        assert torch.allclose(cell.candidate_weights(*edge), uniform, rtol=0.02)  # the logits' 1e-3 noise
    for _ in range(200):
        optimizer.zero_grad()
        for alpha in cell.arch_parameters():
            alpha.grad = torch.zeros_like(alpha)  # no data gradient: only the weight decay acts
        optimizer.step()
    for edge in edges_of(cell):  # the 1e-3 noise has decayed; the weights are DARTS's uniform start, within 0.1%
        assert torch.allclose(cell.candidate_weights(*edge).detach(), uniform, rtol=1e-3), edge


def factored_and_explicit(convs: list[str], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """One edge's factored output and the explicit weighted sum over frozen combinations (sharing the
    bodies' weights), in eval mode with non-trivial batch-norm statistics; and the convolutions each ran."""
    torch.manual_seed(seed)
    channels = 4
    bodies = {conv: build_operation(combination('relu', conv), channels, 1, True) for conv in convs}
    others = {name: OPERATIONS[name](channels, 1, True) for name in SMALL['operations']}
    edge = FactorizedEdge(ACTIVATION_NAMES, bodies, others).double().eval()
    for module in edge.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            nn.init.uniform_(module.weight, 0.5, 2)
            nn.init.uniform_(module.bias, -1, 1)
    weights = EdgeWeights(*(torch.softmax(torch.randn(n, dtype=torch.double) * 2, -1)
                            for n in (2 + len(others), len(ACTIVATION_NAMES), len(convs))))
    x = torch.randn(2, channels, 6, 6, dtype=torch.double)
    convolutions = []

    def count(module, inputs, output):
        convolutions.append(module)
    hooks = [m.register_forward_hook(count) for m in edge.modules() if isinstance(m, nn.Conv2d)]
    factored = edge(x, weights)
    factored_convolutions = len(convolutions)
    for hook in hooks:
        hook.remove()

    explicit = sum(w * op(x) for w, op in zip(weights.group[1:], others.values()))
    convolutions.clear()
    for a, activation in enumerate(ACTIVATION_NAMES):
        for o, conv in enumerate(convs):
            frozen = build_operation(combination(activation, conv), channels, 1, True).double().eval()
            frozen.load_state_dict(bodies[conv].state_dict())
            for m in frozen.modules():
                if isinstance(m, nn.Conv2d):
                    m.register_forward_hook(count)
            explicit = explicit + weights.group[0] * weights.activation[a] * weights.conv[o] * frozen(x)
    return factored, explicit, factored_convolutions, len(convolutions)


def test_factored_edge_equals_the_explicit_sum_over_all_combinations_where_bodies_are_affine():
    factored, explicit, factored_convolutions, explicit_convolutions = factored_and_explicit(LINEAR_BODIES)
    assert torch.allclose(factored, explicit, atol=1e-10)
    # 4 bodies ran (2 convolutions each for dil_conv, 1 for conv_*), where the explicit sum ran 32
    assert (factored_convolutions, explicit_convolutions) == (6, 6 * len(ACTIVATION_NAMES))


def test_a_second_activation_inside_the_body_makes_it_an_approximation():
    """sep_conv applies the mixed activation twice: documented, and measurably not the explicit sum."""
    factored, explicit, _, _ = factored_and_explicit(['sep_conv_3x3'])
    assert not torch.allclose(factored, explicit, atol=1e-6)


def test_the_explicit_product_space_runs_and_holds_more_than_the_factored_one(tmp_path):
    space = tiny_space(tmp_path)
    supernets = {'scalable': ScalableDARTS().mutate_model(space.search_space()),
                 'darts': DARTS().mutate_model(space.search_space())}
    x = torch.randn(2, 1, 8, 8)
    cost = {}
    for name, net in supernets.items():
        macs = []

        def count(module, inputs, output):
            kernel_h, kernel_w = module.kernel_size
            macs.append(output.numel() * module.in_channels // module.groups * kernel_h * kernel_w)
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                module.register_forward_hook(count)
        net(x)
        cost[name] = {'convolutions run': len(macs), 'multiply-adds': sum(macs),
                      'operation weights': sum(p.numel() for n, p in net.named_parameters() if '.ops.' in n),
                      'modules': sum(1 for _ in net.modules())}
    for key in cost['darts']:  # the 32 combinations' bodies against 4: at least 5x, counting the shared stem
        assert cost['darts'][key] > 5 * cost['scalable'][key], (key, cost)


def test_export_picks_the_best_combination_and_freezes_to_exactly_those_operations(tmp_path):
    space = tiny_space(tmp_path, cells=3)  # cell 0 is a normal cell; 1 and 2 reduce
    net = ScalableDARTS().mutate_model(space.search_space())
    cell: FactorizedCell = net.cells[0]
    with torch.no_grad():
        for key, alpha in architecture_weights(cell).items():
            alpha.zero_()
        architecture_weights(cell)['normal/2_0/group'][0] = 6.0  # the factored group, 6 above its log(A x O) offset
        architecture_weights(cell)['normal/2_0/activation'][ACTIVATION_NAMES.index('swish')] = 2.0
        architecture_weights(cell)['normal/2_0/conv'][CONV_NAMES.index('dil_conv_5x5')] = 2.0
        architecture_weights(cell)['normal/2_1/group'][1 + SMALL['operations'].index('max_pool_3x3')] = 4.0
        architecture_weights(cell)['normal/2_1/group'][-1] = 9.0  # the zero op: never exported
    exported = net.cells[0].export({})
    chosen = {exported[f'normal/input_2_{slot}'][0]: exported[f'normal/op_2_{slot}'] for slot in range(2)}
    assert chosen == {0: 'swish+dil_conv_5x5', 1: 'max_pool_3x3'}
    probabilities = cell.export_probs({})['normal/2_0']
    assert len(probabilities) == CANDIDATES and max(probabilities, key=probabilities.get) == 'swish+dil_conv_5x5'

    found = {**net.cells[1].export({}), **exported}  # cells 1 and 2 share the label reduce
    assert set(found) == set(net.simplify()) == set(space.search_space().simplify())
    assert net.check_contains(found) is None  # what NasExperiment checks before it freezes
    model = space.evaluation_model(found)
    frozen_ops = {}
    for node, slots in enumerate(model.cells[0].ops, start=2):
        for slot, op in enumerate(slots):
            frozen_ops[found[f'normal/op_{node}_{slot}']] = op
    for name, op in frozen_ops.items():
        factors = split_combination(name)
        if factors is None:
            assert not isinstance(op, ActivatedOperation)
            continue
        activation, conv = factors
        reference = OPERATIONS[conv](4, 1, True)
        assert isinstance(op, ActivatedOperation) and op.state_dict().keys() == reference.state_dict().keys()
        assert all(type(op[i]) is ACTIVATIONS[activation] for i in op.activation_slots)
        assert [getattr(m, 'kernel_size', None) for m in op] == [getattr(m, 'kernel_size', None) for m in reference]
    swish_dil = frozen_ops['swish+dil_conv_5x5']
    assert isinstance(swish_dil[0], nn.SiLU) and swish_dil[1].kernel_size == (5, 5) and swish_dil[1].dilation == (2, 2)
    assert sum(isinstance(m, ActivatedOperation) for m in model.cells[0].modules()) == \
        sum(split_combination(found[f'normal/op_{n}_{s}']) is not None for n in range(2, 4) for s in range(2))
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_random_samples_the_product_space(tmp_path):
    space = tiny_space(tmp_path)
    model_space = space.search_space()
    drawn = {op for seed in range(12) for label, op in RandomArchitecture(seed=seed).sample(model_space).items()
             if '/op_' in label}
    assert drawn <= set(model_space.simplify()['reduce/op_2_0'].values)
    assert sum(split_combination(op) is not None for op in drawn) >= 15  # 4 slots x 12 draws over 35 candidates
    sample = RandomArchitecture(seed=3).sample(model_space)
    assert space.evaluation_model(sample)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


class _Holder(LightningModule):
    def __init__(self, model):
        super().__init__()
        self.set_model(model)


def test_alternating_updates_one_factor_per_architecture_step(tmp_path):
    net = ScalableDARTS().mutate_model(tiny_space(tmp_path).search_space())
    module = ScalableDARTS().configure_oneshot_module(_Holder(net))
    optimizer = module.configure_architecture_optimizers()
    optimizer.is_arch_optimizer = True
    cell: FactorizedCell = net.cells[0]
    turns = FactorTurns()
    x = torch.randn(2, 1, 8, 8)
    for expected in ['activation', 'conv', 'activation']:
        before = {key: p.detach().clone() for key, p in architecture_weights(cell).items()}
        optimizer.zero_grad()
        net(x).logsumexp(1).sum().backward()
        turns.on_before_optimizer_step(None, module, optimizer)
        optimizer.step()
        moved = {key.rsplit('/', 1)[1] for key, p in architecture_weights(cell).items() if not torch.equal(p, before[key])}
        assert moved == {expected, 'group'}
    assert turns.state_dict() == {'steps': 3}


def test_factor_updates_option():
    assert part(make_strategy('scalable'), FactorizedCandidates).factor_updates == 'joint'
    assert part(make_strategy('scalable', factor_updates='alternate'), FactorizedCandidates).factor_updates == 'alternate'
    with pytest.raises(ConfigError, match="unknown factor_updates 'sometimes'; accepted: alternate, joint"):
        make_strategy('scalable', factor_updates='sometimes')


@pytest.mark.parametrize('space', ['darts_small', *USER_SPACES])
def test_scalable_refuses_a_space_without_factors_and_says_how_to_name_candidates(space):
    build = USER_SPACES.get(space, lambda: load_space(space, 1, 10, 8).search_space())
    message = ('scalable needs a space with a factored choice: name the candidates of a LayerChoice (a dict) or of '
               "a Cell's operation dict ACTIVATION+CONV, the full product (relu+conv3x3, tanh+conv3x3, relu+conv5x5, "
               'tanh+conv5x5), or use a YAML space with factors, such as darts_small_factorized')
    with pytest.raises(ConfigError, match=re.escape(message)):
        ScalableDARTS().mutate_model(build())


USER_ACTIVATIONS = {'relu': nn.ReLU, 'tanh': nn.Tanh, 'sigmoid': nn.Sigmoid}
USER_CONVS = {'conv3x3': 3, 'conv5x5': 5}
USER_COMBINATIONS = [f'{a}+{c}' for a in USER_ACTIVATIONS for c in USER_CONVS]


def activated_conv(name: str) -> nn.Module:
    """A user's own ``ACTIVATION+CONV`` candidate: the activation, then a convolution and batch norm."""
    activation, conv = name.split('+')
    kernel = USER_CONVS[conv]
    return nn.Sequential(USER_ACTIVATIONS[activation](),
                         nn.Conv2d(CHANNELS, CHANNELS, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(CHANNELS))


class FactoredLayerChoice(ModelSpace):
    """A dict ``LayerChoice`` over activation x conv (3 x 2), then a plain one."""

    def __init__(self):
        super().__init__()
        self.stem = stem()
        self.block = LayerChoice({name: activated_conv(name) for name in USER_COMBINATIONS}, label='block')
        self.after = LayerChoice({'conv3x3': activated_conv('relu+conv3x3'), 'skip': nn.Identity()}, label='after')
        self.head = head()

    def forward(self, x):
        return self.head(self.after(self.block(self.stem(x))))


class FactoredCell(ModelSpace):
    """An NNI ``Cell`` of 2 nodes whose operations are activation x conv (3 x 2) and a plain skip."""

    def __init__(self):
        super().__init__()
        self.stem = stem()
        operations = {name: lambda node, op, source, name=name: activated_conv(name) for name in USER_COMBINATIONS}
        operations['skip'] = lambda node, op, source: nn.Identity()
        self.cell = Cell(operations, num_nodes=2, num_ops_per_node=1, num_predecessors=1, label='cell')
        self.project = nn.Conv2d(2 * CHANNELS, CHANNELS, 1)
        self.head = head()

    def forward(self, x):
        return self.head(self.project(self.cell(self.stem(x))))


def softmax_by_hand(logits: list[float]) -> list[float]:
    exps = [math.exp(v) for v in logits]
    return [e / sum(exps) for e in exps]


def test_a_users_factored_layer_choice_has_one_vector_per_factor_and_product_weights():
    net = ScalableDARTS().mutate_model(FactoredLayerChoice())
    block: FactorizedLayer = net.block
    assert isinstance(block, FactorizedLayer) and block.names == USER_COMBINATIONS
    assert {key: tuple(p.shape) for key, p in architecture_weights(block).items()} == \
        {'block/activation': (len(USER_ACTIVATIONS),), 'block/conv': (len(USER_CONVS),)}  # 3 + 2, not 6
    assert isinstance(net.after, DifferentiableMixedLayer)  # plain names: DARTS's mixed layer
    activation_logits, conv_logits = [0.5, -1.0, 2.0], [1.0, -0.5]
    with torch.no_grad():
        architecture_weights(block)['block/activation'].copy_(torch.tensor(activation_logits))
        architecture_weights(block)['block/conv'].copy_(torch.tensor(conv_logits))
    activation, conv = softmax_by_hand(activation_logits), softmax_by_hand(conv_logits)
    by_hand = [activation[a] * conv[o] for a in range(len(USER_ACTIVATIONS)) for o in range(len(USER_CONVS))]
    weights = block.candidate_weights().detach()
    assert torch.allclose(weights, torch.tensor(by_hand))
    assert math.isclose(float(weights[USER_COMBINATIONS.index('tanh+conv5x5')]),
                        math.exp(-1.0) / (math.exp(0.5) + math.exp(-1.0) + math.exp(2.0))
                        * math.exp(-0.5) / (math.exp(1.0) + math.exp(-0.5)), rel_tol=1e-6)
    x = torch.randn(2, CHANNELS, 8, 8)
    assert torch.allclose(block(x), sum(w * block[name](x) for w, name in zip(by_hand, USER_COMBINATIONS)), atol=1e-6)
    assert block.export({}) == {'block': 'sigmoid+conv3x3'}
    assert block.export_probs({})['block'] == pytest.approx(dict(zip(USER_COMBINATIONS, by_hand)))
    frozen = FactoredLayerChoice().freeze({'block': 'sigmoid+conv3x3', 'after': 'skip'})
    assert isinstance(frozen.block[0], nn.Sigmoid) and frozen.block[1].kernel_size == (3, 3)


def test_a_users_factored_layer_choice_is_searched_and_exported_by_name():
    architecture = search_once(make_strategy('scalable'), FactoredLayerChoice)
    assert architecture['block'] in USER_COMBINATIONS and architecture['after'] in ('conv3x3', 'skip')


def test_a_users_cell_with_factored_operations_runs_its_own_modules_with_product_weights():
    net = ScalableDARTS().mutate_model(FactoredCell())
    cell: FactorizedCell = net.cell
    assert isinstance(cell, FactorizedCell)
    edges = edges_of(cell)
    assert edges == [(1, 0), (2, 0), (2, 1)]
    # the combinations are the user's modules, not ActivatedOperations: every one runs
    assert all(isinstance(cell.ops[node - 1][source], ProductEdge) for node, source in edges)
    shapes = {key: tuple(p.shape) for key, p in architecture_weights(cell).items() if key.startswith('cell/2_1/')}
    # group: [the product, skip, zero]
    assert shapes == {'cell/2_1/group': (3,), 'cell/2_1/activation': (3,), 'cell/2_1/conv': (2,)}
    group_logits, activation_logits, conv_logits = [3.0, -1.0, -1.0], [-0.4, 0.0, 2.0], [1.5, -0.9]
    with torch.no_grad():
        for part, logits in [('group', group_logits), ('activation', activation_logits), ('conv', conv_logits)]:
            architecture_weights(cell)[f'cell/2_1/{part}'].copy_(torch.tensor(logits))
        architecture_weights(cell)['cell/1_0/group'][1] = 5.0  # the skip, far first on node 1's one edge
    group = softmax_by_hand([group_logits[0] + math.log(6), *group_logits[1:]])  # log(A x O) on the product
    activation, conv = softmax_by_hand(activation_logits), softmax_by_hand(conv_logits)
    assert cell.op_names == [*USER_COMBINATIONS, 'skip']
    by_hand = [group[0] * activation[a] * conv[o] for a in range(3) for o in range(2)] + group[1:]  # then skip, zero
    weights = cell.candidate_weights(2, 1).detach()
    assert torch.allclose(weights, torch.tensor(by_hand))
    # 6e^3 / (6e^3 + 2e^-1) * e^2 / (e^-0.4 + 1 + e^2) * e^1.5 / (e^1.5 + e^-0.9) = 0.99393 * 0.81563 * 0.91683
    assert math.isclose(float(weights[cell.op_names.index('sigmoid+conv3x3')]), 0.74325, abs_tol=1e-5)
    x = torch.randn(2, CHANNELS, 8, 8)
    edge: ProductEdge = cell.ops[1][1]
    assert torch.allclose(edge(x, cell.edge_weights(2, 1)),
                          sum(w * edge.candidates[name](x) for w, name in zip(by_hand, cell.op_names)), atol=1e-6)
    exported = cell.export({})  # node 2 keeps its best edge, 2_1 (0.74 against 2_0's uniform 1/8)
    assert exported == {'cell/op_1_0': 'skip', 'cell/input_1_0': [0],
                        'cell/op_2_0': 'sigmoid+conv3x3', 'cell/input_2_0': [1]}
    frozen = FactoredCell().freeze(exported)
    assert isinstance(frozen.cell.ops[1][0], nn.Sequential) and isinstance(frozen.cell.ops[1][0][0], nn.Sigmoid)
    assert frozen(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_users_factored_cell_is_searched_and_exported_in_nnis_cell_labels():
    architecture = search_once(make_strategy('scalable', factor_updates='alternate'), FactoredCell)
    assert set(architecture) == {'cell/op_1_0', 'cell/input_1_0', 'cell/op_2_0', 'cell/input_2_0'}
    assert {architecture['cell/op_1_0'], architecture['cell/op_2_0']} <= {*USER_COMBINATIONS, 'skip'}


def test_alternating_factors_turn_on_a_users_layer_choice_too():
    net = ScalableDARTS().mutate_model(FactoredLayerChoice())
    module = ScalableDARTS().configure_oneshot_module(_Holder(net))
    optimizer = module.configure_architecture_optimizers()
    optimizer.is_arch_optimizer = True
    before = {key: p.detach().clone() for key, p in architecture_weights(net.block).items()}
    net(torch.randn(2, 1, 8, 8)).logsumexp(1).sum().backward()
    FactorTurns().on_before_optimizer_step(None, module, optimizer)
    optimizer.step()
    moved = {key for key, p in architecture_weights(net.block).items() if not torch.equal(p, before[key])}
    assert moved == {'block/activation'}


def test_an_incomplete_product_in_a_users_layer_choice_is_refused():
    class Incomplete(ModelSpace):
        def __init__(self):
            super().__init__()
            self.block = LayerChoice({name: activated_conv(name) for name in USER_COMBINATIONS[:-1]}, label='block')

    message = 'LayerChoice block: the combinations are not a full product of activation x conv; missing sigmoid+conv5x5'
    with pytest.raises(ConfigError, match=re.escape(message)):
        ScalableDARTS().mutate_model(Incomplete())


def test_one_epoch_trial_with_alternating_factors(quick_parameters, tmp_path, monkeypatch):
    turns = []
    step = FactorTurns.on_before_optimizer_step

    def spy(self, trainer, pl_module, optimizer):
        if getattr(optimizer, 'is_arch_optimizer', False):
            turns.append(self.training_factor())
        step(self, trainer, pl_module, optimizer)
    monkeypatch.setattr(FactorTurns, 'on_before_optimizer_step', spy)
    config, options = split_parameters({**quick_parameters, 'variant': 'scalable', 'space': 'darts_small_factorized',
                                        'factor_updates': 'alternate', 'train_subset': 128, 'test_subset': 64})
    final = trial.run(config, options, tmp_path)
    assert turns == ['activation', 'conv']  # 64 images for the weights, batch 32: two architecture steps
    found = json.loads((tmp_path / 'arch.json').read_text())['architecture']
    operations = {op for _, _, op in architecture.cell_edges(found)['normal']}
    candidates = load_space('darts_small_factorized', 1, 10, 8).search_space().simplify()['normal/op_2_0'].values
    assert operations <= set(candidates)
    assert 0 <= final['default'] <= 1 and final['variant'] == 'scalable'


def test_an_incomplete_product_is_refused():
    message = ('cell normal: the combinations are not a full product of activation x conv; '
               'missing relu+dil_conv_3x3, swish+sep_conv_3x3')
    with pytest.raises(ConfigError, match=re.escape(message)):
        factor_values(['skip_connect', 'relu+sep_conv_3x3', 'swish+dil_conv_3x3'], 'cell normal')


@pytest.mark.parametrize('factors, message', [
    ({'activation': ['relu'], 'conv': ['sep_conv_3x3'], 'kernel': [3]},
     "factors: unknown key 'kernel'; accepted: activation, conv"),
    ({'activation': ['relu']}, "factors: missing key 'conv'; required keys: activation, conv"),
    ({'activation': ['relu', 'sigmoid'], 'conv': ['sep_conv_3x3']},
     "factors: activation: unknown activation 'sigmoid'; accepted: elu, gelu, hardswish, leaky_relu, mish, relu, "
     'relu6, swish'),
    ({'activation': ['relu'], 'conv': ['max_pool_3x3']},
     "factors: conv: 'max_pool_3x3' takes no activation (it is not a sequence of layers opened by a ReLU); "
     'accepted conv values: conv_1x1, conv_3x3'),
    ({'activation': ['relu'], 'conv': ['conv_9x9']}, "factors: conv: unknown conv 'conv_9x9'; accepted: conv_1x1, "),
    ({'activation': [], 'conv': ['sep_conv_3x3']}, 'factors: activation must be a non-empty list of names, got []'),
    ({'activation': ['relu', 'relu'], 'conv': ['sep_conv_3x3']},
     "factors: activation values are listed twice: ['relu', 'relu']"),
    ({'activation': ['relu'], 'conv': ['skip_connect']}, "factors: conv: 'skip_connect' takes no activation"),
    ({'activation': ['relu'], 'conv': ['sep_conv_3x3']}, "'sep_conv_3x3' is both an operation and a conv factor value"),
    ([['relu'], ['sep_conv_3x3']], 'factors must be a mapping with keys activation, conv, got list'),
])
def test_bad_factors_name_the_problem(tmp_path, factors, message):
    spec = {'operations': ['skip_connect', 'sep_conv_3x3'], 'nodes': 2, 'cells': 1, 'width': 4, 'factors': factors}
    path = tmp_path / 'bad.yml'
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_space(str(path), 1, 10, 8)
