"""Composed variants: each installs every technique it names; impossible pairs are refused by name."""

from __future__ import annotations

import collections
import math
import pickle

import pytest
import torch
import yaml

from nni_darts_ext import (PCDARTS, PDARTS, VARIANTS, ConfigError, DifferentiableSearch, ScalableDARTS,
                           StabilizedDARTS, Technique, combine, find_variant, make_strategy, preset, probability_rows)
from nni_darts_ext.variants import variant_name
from nni_darts_ext.hypergradient import Amended, FirstOrder
from nni_darts_ext.latency.encoding import Encoding
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.strategies.ladarts import LatencyTerm
from nni_darts_ext.strategies.pdarts import StageModule
from nni_darts_ext.supermodules.batched_edges import mix_edges
from nni_darts_ext.supermodules.designed_cell import DesignedCell, SkipConnectDropout
from nni_darts_ext.supermodules.partial_channel import PartialChannelEdge
from nni_darts_ext.training import ClassifierModule
from nni_darts_ext.nni_internals import ALPHA, architecture_weights

from .conftest import COMPOSED, cpu_settings
from .user_spaces import DictChoices, tiny_evaluator

SPACE = load_space('darts_small', 1, 10, 8)
WIDTH, K = 8, 2
ONE_STAGE_EACH = [[3, None, 1, 0, 0.0], [3, 3, 1, 0, 0.4]]


def composed(variant: str):
    """The variant's strategy at CPU size; with LA-DARTS, its latencies timed on the searched space."""
    options = {**cpu_settings(variant), 'k': K}
    if 'pdarts' in variant:
        options['stages'] = ONE_STAGE_EACH
    strategy = make_strategy(variant, **options)
    if strategy.deploys:
        strategy.deploy(SPACE.search_space(Size(WIDTH, 3)), (1, 8, 8))
    return strategy


def build(strategy):
    return strategy.mutate_model(SPACE.search_space(Size(WIDTH, 3)))


def cells(supernet) -> list:
    return [m for m in supernet.modules() if isinstance(m, DesignedCell)]


def alphas(supernet) -> list[torch.nn.Parameter]:
    return [p for name, p in supernet.named_parameters() if ALPHA in name]


def check_partial_channels(strategy, supernet, module):
    edges = [edge for cell in cells(supernet) for node_edges in cell.ops for edge in node_edges]
    assert edges and all(isinstance(edge, PartialChannelEdge) and edge.k == K for edge in edges)
    # the first cell works on WIDTH channels: its convolutions see WIDTH / K of them
    first = cells(supernet)[0].ops[0][0]['sep_conv_3x3']
    assert next(m for m in first.modules() if isinstance(m, torch.nn.Conv2d)).in_channels == WIDTH // K
    betas = [p for name, p in supernet.named_parameters() if '_arch_beta' in name]
    assert betas and set(map(id, betas)) <= set(map(id, module.arch_parameters()))  # edge normalization is learned


def check_stages(strategy, supernet, module):
    # the cells are P-DARTS's: each identity skip-connect is followed by the stage's dropout
    assert any(isinstance(m, SkipConnectDropout) for cell in cells(supernet) for m in cell.modules())
    assert isinstance(module, StageModule) and [s.cells for s in strategy.slots.schedule.stages] == [3, 3]


def check_amended(strategy, supernet, module):
    assert isinstance(module.estimator, Amended) and module.estimator.eta == 0.01


def check_latency(strategy, supernet, module):
    [term] = module.terms
    assert isinstance(term, LatencyTerm)
    if 'stabilized' not in strategy.slots.filled.get('estimator', []):
        assert isinstance(module.estimator, FirstOrder)  # the term needs an estimator to add to
    gradients = torch.autograd.grad(term(supernet), alphas(supernet))
    assert sum(float(g.abs().sum()) for g in gradients) > 0


TECHNIQUES = {'pcdarts': check_partial_channels, 'pdarts': check_stages, 'stabilized': check_amended,
              'ladarts': check_latency}


@pytest.mark.parametrize('variant', COMPOSED)
def test_each_composed_preset_installs_every_technique_it_names(variant):
    strategy = composed(variant)
    supernet = build(strategy)
    module = strategy.configure_oneshot_module(ClassifierModule(0.025, 0.001, 0.9, 3e-4))
    module.set_model(supernet)
    for technique in variant.split('+'):
        TECHNIQUES[technique](strategy, supernet, module)


@pytest.mark.parametrize('variant, slots', [
    ('darts', {}),
    ('pcdarts+stabilized', {'cells': ['pcdarts'], 'estimator': ['stabilized']}),
    ('pdarts+pcdarts', {'schedule': ['pdarts'], 'cells': ['pdarts', 'pcdarts']}),
    ('pcdarts+ladarts', {'cells': ['pcdarts'], 'terms': ['ladarts']}),
    ('pdarts+pcdarts+stabilized+ladarts', {'schedule': ['pdarts'], 'cells': ['pdarts', 'pcdarts'],
                                           'terms': ['ladarts'], 'estimator': ['stabilized']}),
    ('scalable+ladarts', {'cells': ['scalable'], 'terms': ['ladarts']}),
    ('darts2', {'estimator': ['darts2']}),
])
def test_each_technique_fills_its_slots(variant, slots):
    strategy = make_strategy(variant)
    assert strategy.slots.filled == slots
    # the composition's techniques are in slot order, whatever the order of the name
    assert type(make_strategy('+'.join(reversed(variant.split('+'))))) is type(strategy)


def test_pdarts_pcdarts_prunes_partial_channel_edges_between_stages():
    strategy = composed('pdarts+pcdarts')
    first = build(strategy)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for alpha in alphas(first):
            alpha.copy_(torch.randn(alpha.shape, generator=generator))
    second = strategy.slots.schedule.next_stage_supernet(first, 1)
    for before, after in zip(cells(first), cells(second)):
        for edge in before.edge_operations:
            ranked = sorted(before.operation_weights(edge).items(), key=lambda item: -item[1])
            kept = [op for op, _ in ranked][:3]  # the zero operation competes like any other
            assert sorted(after.edge_operations[edge]) == sorted(kept)
    edges = [edge for cell in cells(second) for node_edges in cell.ops for edge in node_edges]
    assert all(isinstance(edge, PartialChannelEdge) and len(edge) <= 3 for edge in edges)
    assert second(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_edge_normalization_weighs_the_derivation_of_pruned_cells():
    supernet = build(composed('pdarts+pcdarts'))
    cell = cells(supernet)[0]
    with torch.no_grad():
        for alpha in architecture_weights(cell).values():
            alpha.zero_()  # every edge's best operation weighs the same: the edge weights decide
        cell._arch_beta[f'{cell.label}/3'].copy_(torch.tensor([-5.0, 5.0, 4.0]))
    assert {cell.export({})[f'{cell.label}/input_3_{slot}'][0] for slot in range(2)} == {1, 2}


def test_latency_encoding_reads_pruned_progressive_edges_as_full_rows():
    strategy = composed('pdarts+pcdarts+stabilized+ladarts')
    second = strategy.slots.schedule.next_stage_supernet(build(strategy), 1)
    rows = Encoding.of(SPACE.search_space(Size(WIDTH, 3))).probabilities(second)
    torch.testing.assert_close(rows.sum(1), torch.ones(len(rows)))
    # the dropped operations' columns stay 0 (the zero operation's holds the edge's chance of being dropped)
    assert ((rows[:, :-1] > 0).sum(1) <= 3).all()
    gradient, = torch.autograd.grad((rows * torch.arange(rows.shape[1])).sum(), alphas(second)[0])
    assert gradient.abs().sum() > 0


def test_the_latency_term_reaches_every_edge_weight_of_pcdarts():
    strategy = composed('pcdarts+ladarts')
    supernet = build(strategy)
    module = strategy.configure_oneshot_module(ClassifierModule(0.025, 0.001, 0.9, 3e-4))
    module.set_model(supernet)
    betas = [p for name, p in supernet.named_parameters() if '_arch_beta' in name]
    [term] = module.terms
    gradients = torch.autograd.grad(term(supernet), betas, allow_unused=True)
    assert len(betas) == 2 * 4  # a vector per node of the normal and the reduction cell
    # a node with two incoming edges keeps both whatever its beta: only the others' betas choose
    choosing = [len(beta) > 2 for beta in betas]
    assert sum(choosing) == 2 * 3
    assert all((gradient is not None and float(gradient.abs().sum()) > 0) == chooses
               for gradient, chooses in zip(gradients, choosing))


@pytest.mark.parametrize('variant', ['pcdarts', 'pdarts+pcdarts'])
def test_an_edge_normalized_row_is_the_edges_expected_encoding(variant):
    supernet = build(composed(variant))
    cell = cells(supernet)[0]
    beta = [2.0, 0.0, -1.0]  # node 3's edges from nodes 0, 1, 2
    operations = len(cell.op_names) + 1
    alpha = {source: torch.linspace(-1.0, 1.0, operations) * (source + 1) for source in range(3)}
    with torch.no_grad():
        cell._arch_beta[f'{cell.label}/3'].copy_(torch.tensor(beta))
        for source in range(3):
            architecture_weights(cell)[f'{cell.label}/3_{source}'].copy_(alpha[source])
    encoding = Encoding.of(SPACE.search_space(Size(WIDTH, 3)))
    rows = encoding.probabilities(supernet)
    kept = [min(1.0, 2 * math.exp(b) / sum(math.exp(c) for c in beta)) for b in beta]
    assert kept[0] == 1.0 > kept[1] > kept[2]  # the strongest edge saturates, the others are partly dropped
    for source in range(3):
        zero = torch.zeros(operations, dtype=torch.float64)
        zero[-1] = 1.0
        expected = kept[source] * torch.softmax(alpha[source].double(), 0) + (1 - kept[source]) * zero
        torch.testing.assert_close(rows[encoding.labels.index(f'{cell.label}/3_{source}')], expected.float())


@pytest.mark.parametrize('variant', ['pcdarts', 'pdarts+pcdarts'])
def test_a_node_with_as_many_edges_as_slots_keeps_both_and_encodes_its_softmaxes(variant):
    cell = cells(build(composed(variant)))[0]
    with torch.no_grad():
        cell._arch_beta[f'{cell.label}/2'].copy_(torch.tensor([2.0, -1.0]))  # beta cannot drop either edge
        for source in range(2):
            architecture_weights(cell)[f'{cell.label}/2_{source}'].copy_(torch.linspace(-1.0, 1.0, len(cell.op_names) + 1))
    for source in range(2):
        alpha = architecture_weights(cell)[f'{cell.label}/2_{source}']
        assert torch.equal(cell.edge_probabilities(f'{cell.label}/2_{source}'), torch.softmax(alpha, 0))


@pytest.mark.parametrize('variant, message', [
    ('darts2+stabilized', 'darts2 and stabilized cannot be composed: both set the architecture-gradient estimator'),
    ('pcdarts+scalable', 'pcdarts and scalable cannot be composed: both build the supernet cells'),
    ('pdarts+scalable', "pdarts and scalable cannot be composed: P-DARTS prunes each edge's operation vector"),
    ('random+pcdarts', 'random is a baseline, so it composes with nothing; composable: darts, pdarts, pcdarts'),
    ('pcdarts+pcdarts', 'names pcdarts twice'),
    ('darts+darts', 'names darts twice'),
    ('stabilized+PCDARTS+stabilized', 'names stabilized twice'),
])
def test_a_conflicting_combination_raises_naming_the_conflict(variant, message):
    with pytest.raises(ConfigError) as info:
        make_strategy(variant)
    assert str(info.value).startswith(f'variant {variant!r}: {message}')


@pytest.mark.parametrize('spelled, name', [
    ('stabilized+pcdarts', 'pcdarts+stabilized'),
    ('darts+pcdarts+stabilized', 'pcdarts+stabilized'),
    ('pcdarts+darts', 'pcdarts'),
    ('LADARTS + stabilized+pcdarts+pdarts', 'pdarts+pcdarts+stabilized+ladarts'),
    ('darts2+pcdarts', 'pcdarts+darts2'),
])
def test_one_composition_has_one_name_whatever_the_order(spelled, name):
    assert variant_name(spelled) == name
    assert find_variant(spelled).name == name
    assert type(make_strategy(spelled)) is type(make_strategy(name))


def test_an_unknown_member_is_named_with_the_accepted_ones():
    with pytest.raises(ConfigError) as info:
        make_strategy('pcdarts+pcdart')
    assert str(info.value).startswith("in 'pcdarts+pcdart': unknown variant 'pcdart'; accepted: darts, darts2, ")


def test_python_api_combines_strategy_classes():
    pc_stabilized = combine(StabilizedDARTS, PCDARTS)
    assert pc_stabilized is combine(PCDARTS, StabilizedDARTS)  # one class per set of techniques
    assert pickle.loads(pickle.dumps(pc_stabilized)) is pc_stabilized
    strategy = pc_stabilized(k=2, eta=0.5, arc_learning_rate=1e-3)
    assert (strategy.slots.cells.channels.k, strategy.slots.estimator.eta, strategy.arc_learning_rate) == (2, 0.5, 1e-3)
    assert combine(PCDARTS) is PCDARTS and combine(DifferentiableSearch, PCDARTS) is PCDARTS
    with pytest.raises(ConfigError, match='ScalableDARTS and PCDARTS cannot be composed'):
        combine(ScalableDARTS, PCDARTS)
    assert type(make_strategy('pcdarts+pdarts')) is combine(PDARTS, PCDARTS)


def test_composed_defaults_and_options():
    strategy = make_strategy('pcdarts+stabilized')
    # the papers' settings; where they differ, the supernet technique's (PC-DARTS's learning rate)
    assert (strategy.slots.cells.channels.k, strategy.warmup_epochs, strategy.arc_learning_rate,
            strategy.slots.estimator.eta) == (4, 15, 6e-4, 0.01)
    with pytest.raises(ConfigError, match="variant 'pdarts\\+pcdarts' has no option 'warmup_epochs'; its options: "
                                          'stages, skip_limit, skip_dropout_decay, arc_learning_rate'):
        make_strategy('pdarts+pcdarts', warmup_epochs=1)


def test_the_latency_term_reads_factorized_cells_and_reaches_both_factors(tmp_path):
    """Factorized cells give each edge's row over their candidates like every supernet cell, so
    LA-DARTS's latency term composes with Scalable-DARTS and differentiates both factors' vectors."""
    path = tmp_path / 'factored.yml'  # two activations x two convolutions in one cell of two nodes: quick to time
    path.write_text(yaml.safe_dump({'operations': ['max_pool_3x3', 'skip_connect'], 'nodes': 2, 'cells': 1, 'width': 4,
                                    'factors': {'activation': ['relu', 'swish'], 'conv': ['sep_conv_3x3', 'dil_conv_3x3']},
                                    'evaluation': {'cells': 1, 'width': 4}}))
    space = load_space(str(path), 1, 10, 8)
    strategy = make_strategy('scalable+ladarts', latency_samples=8, latency_repeats=3, latency_cache=tmp_path)
    strategy.deploy(space.search_space(), (1, 8, 8))
    supernet = strategy.mutate_model(space.search_space())
    module = strategy.configure_oneshot_module(ClassifierModule(0.025, 0.001, 0.9, 3e-4))
    module.set_model(supernet)
    [term] = module.terms
    factors = {name: p for name, p in supernet.named_parameters() if name.endswith(('/activation', '/conv'))}
    assert factors and set(map(id, factors.values())) <= set(map(id, module.arch_parameters()))
    gradients = torch.autograd.grad(term(supernet), list(factors.values()))
    assert all(float(g.abs().sum()) > 0 for g in gradients)


class ExpectedEdges:
    """A toy architecture term from outside the package: ``weight`` x the expected number of cell
    edges that carry an operation (a sparsity cost), from the public probability rows."""

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, module) -> torch.Tensor:
        # the space has cells alone: every row is an edge's, its last column the zero operation
        return self.weight * sum(1 - row[-1] for row in probability_rows(module).values())

    def diagnostics(self, module) -> dict[str, float]:
        with torch.no_grad():
            return {'expected_edges': float(self(module)) / self.weight}


class Sparsity(Technique):
    """The toy technique: its term in the terms slot."""
    name = 'sparsity'

    def __init__(self, *, sparsity_weight: float = 0.1):
        self.term = ExpectedEdges(sparsity_weight)

    def fill(self, slots):
        slots.add_term(self.term)


class SparseDARTS(DifferentiableSearch):
    techniques = (Sparsity,)


class EveryChannel:
    """A channels piece from outside the package: every channel through the candidates, as in
    DARTS, counting what the supernet asks of it."""
    weighs_edges = False

    def __init__(self):
        self.calls = collections.Counter()

    def edge(self, operations, label):
        self.calls['edge'] += 1
        return operations

    def candidate(self, module, label):
        self.calls['candidate'] += 1
        return module

    def node_output(self, inputs, candidates, weights, edge_weights, label, drawn):
        self.calls['node_output'] += 1
        assert edge_weights is None  # it weighs no edges
        return mix_edges(inputs, candidates, weights, drawn)


class AllChannels(Technique):
    name = 'all_channels'

    def __init__(self):
        self.piece = EveryChannel()

    def fill(self, slots):
        slots.design_cells(channels=self.piece)


class AllChannelDARTS(DifferentiableSearch):
    techniques = (AllChannels,)


def test_a_channels_piece_from_outside_builds_and_mixes_every_mixed_operation():
    x = torch.randn(2, 1, 8, 8)
    supernets, outputs = [], []
    for strategy in (AllChannelDARTS(), make_strategy('darts')):
        torch.manual_seed(0)
        supernets.append(build(strategy))
        outputs.append(supernets[-1](x))
    assert torch.equal(*outputs)  # every channel: DARTS's supernet, to the bit
    ours = supernets[0]
    edges = sum(len(node_edges) for cell in cells(ours) for node_edges in cell.ops)
    nodes = sum(len(cell.output_node_indices) for cell in cells(ours))
    assert all(cell.channels is not None for cell in cells(ours))
    [piece] = {id(cell.channels): cell.channels for cell in cells(ours)}.values()
    assert piece.calls == {'edge': edges, 'node_output': nodes}

    layers = AllChannelDARTS().mutate_model(DictChoices())
    assert layers.first.channels.calls == {'candidate': 5}  # 3 and 2 candidates, one piece for both
    layers(torch.randn(2, 1, 8, 8))
    assert layers.first.channels.calls == {'candidate': 5, 'node_output': 2}


def test_a_technique_from_outside_composes_by_name_and_its_term_reaches_alpha():
    preset('sparsity', 'a toy sparsity cost', SparseDARTS)
    try:
        strategy = make_strategy('pcdarts+sparsity', k=K, sparsity_weight=0.5)
    finally:
        del VARIANTS['sparsity']
    assert strategy.slots.filled['terms'] == ['sparsity'] and strategy.slots.cells.channels.k == K
    supernet = build(strategy)
    module = strategy.configure_oneshot_module(ClassifierModule(0.025, 0.001, 0.9, 3e-4))
    module.set_model(supernet)
    [term] = module.terms
    assert isinstance(term, ExpectedEdges) and term.weight == 0.5
    assert set(module.epoch_fields()) == {'expected_edges'}
    cost = term(module)
    edge_alphas = alphas(supernet)
    gradients = torch.autograd.grad(cost, edge_alphas)
    # raising an edge's zero-operation logit lowers the cost; every edge's vector gets a gradient
    assert all(float(g[-1]) < 0 and float(g.abs().sum()) > 0 for g in gradients)


def test_a_search_takes_terms_and_an_estimator_from_its_options_where_no_technique_sets_one():
    term = ExpectedEdges(1.0)
    strategy = PCDARTS(terms=(term,), estimator=Amended(0.5))
    assert strategy.slots.terms == [term] and strategy.slots.estimator.eta == 0.5
    assert strategy.slots.filled['terms'] == ['the terms option']
    with pytest.raises(ConfigError, match='stabilized and the estimator option cannot be composed: both set the '
                                          'architecture-gradient estimator'):
        StabilizedDARTS(estimator=FirstOrder())


class ThreeTimesAlpha:
    """A term whose gradient is 3 on every architecture weight."""

    def __call__(self, module):
        return 3 * sum(alpha.sum() for alpha in module.arch_parameters())

    def diagnostics(self, module):
        return {}


def test_each_epoch_records_how_hard_the_terms_steer_beside_the_loss():
    # an estimator whose gradient is 1 on every weight: the terms' gradient norm is 3 times its own
    strategy = DifferentiableSearch(estimator=lambda problem: [torch.ones_like(a) for a in problem.alphas],
                                    terms=(ThreeTimesAlpha(),))
    supernet = strategy.mutate_model(DictChoices())
    search = strategy.mutate_evaluator(tiny_evaluator(batches=2))
    search.evaluate(supernet)
    assert search.module.epoch_fields()['term_to_loss_gradient'] == pytest.approx(3.0, rel=1e-6)
    assert 'term_to_loss_gradient' not in DifferentiableSearch().configure_oneshot_module(
        ClassifierModule(0.025, 0.001, 0.9, 3e-4)).epoch_fields()
