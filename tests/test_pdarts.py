"""P-DARTS: stages that grow deeper over pruned edges and choices, skip-connect dropout and limit, the budget."""

from __future__ import annotations

import json
import logging
import math

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from nni.nas.hub.pytorch.nasnet import FactorizedReduce
from nni.nas.nn.pytorch import ModelSpace
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedRepeat

from nni_darts_ext import PDARTS, ConfigError, make_strategy, trial
from nni_darts_ext.architecture import SKIP_CONNECT, cell_edges, skip_connects
from nni_darts_ext.config import split_parameters
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.spaces.operations import ZERO_OPERATION
from nni_darts_ext.strategies.pdarts import (CPU_STAGES, PAPER_STAGES, Stage, budget_stages, parse_stages,
                                             skip_dropout_rate, surviving_operations)
from nni_darts_ext.supermodules.designed_cell import DesignedCell, DesignedLayer, SkipConnectDropout
from nni_darts_ext.nni_internals import ALPHA, architecture_weights

from .conftest import CPU_VARIANT_SETTINGS, CreatesFile
from .hub_experiment import hub_darts_labels, search_hub_darts
from .user_spaces import USER_SPACES, DictChoices, ListChoices, Nested, Repeated, search_once, tiny_evaluator

TWO_STAGES = [[3, None, 1, 0, 0.0], [4, 5, 3, 1, 0.6]]


def small_space(cells: int = 3) -> ModelSpace:
    return load_space('darts_small', 1, 10, 8).search_space(Size(4, cells))


def cells_of(supernet: nn.Module) -> list[DesignedCell]:
    return [m for m in supernet.modules() if isinstance(m, DesignedCell)]


def randomize_alphas(supernet: nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for cell in cells_of(supernet):
            for alpha in architecture_weights(cell).values():
                alpha.copy_(torch.randn(alpha.shape, generator=generator))


def test_surviving_operations_are_the_top_k_the_zero_operation_competing_like_any_other():
    weights = {'a': 0.1, 'b': 0.4, 'c': 0.05, ZERO_OPERATION: 0.3, 'd': 0.15}
    assert surviving_operations(weights, 3) == ('b', ZERO_OPERATION, 'd')
    assert surviving_operations(weights, 1) == ('b',)
    assert surviving_operations({**weights, ZERO_OPERATION: 0.01}, 3) == ('a', 'b', 'd')


def test_dropped_operations_are_gone_from_the_next_stage_modules_and_architecture_parameters():
    strategy = PDARTS(stages=[[3, None, 1, 0, 0.0], [4, 5, 1, 0, 0.4], [5, 3, 1, 0, 0.7]])
    first = strategy.mutate_model(small_space())
    randomize_alphas(first)
    previous = {edge: cell.operation_weights(edge) for cell in cells_of(first) for edge in cell.edge_operations}
    assert all(len(weights) == 8 for weights in previous.values())  # 7 operations and the zero operation

    second = strategy.slots.schedule.next_stage_supernet(first, 1)
    for cell in cells_of(second):
        for node, edges in zip(cell.output_node_indices, cell.ops):
            for source, operations in enumerate(edges):
                edge = f'{cell.label}/{node}_{source}'
                top_5 = sorted(previous[edge], key=previous[edge].get, reverse=True)[:5]
                assert set(cell.edge_operations[edge]) == set(top_5)
                assert set(operations) == set(top_5) - {ZERO_OPERATION}  # nothing else is built
                assert architecture_weights(cell)[edge].numel() == 5
    arch_parameters = sum(p.numel() for name, p in second.named_parameters() if ALPHA in name)
    assert arch_parameters == 5 * len(previous)

    randomize_alphas(second, seed=1)
    previous = {edge: cell.operation_weights(edge) for cell in cells_of(second) for edge in cell.edge_operations}
    third = strategy.slots.schedule.next_stage_supernet(second, 2)
    for cell in cells_of(third):
        for edge, operations in cell.edge_operations.items():
            # the last stage prunes by weight too, the zero operation included
            assert set(operations) == set(sorted(previous[edge], key=previous[edge].get, reverse=True)[:3])


def test_the_last_stage_keeps_the_zero_operation_where_it_ranks_and_the_final_cell_never_exports_it():
    strategy = PDARTS(stages=[[3, None, 1, 0, 0.0], [4, 5, 1, 0, 0.4], [5, 3, 1, 0, 0.7]])
    supernet = strategy.mutate_model(small_space())
    for index in (1, 2):
        # every edge: the zero operation strongest, then sep_conv_3x3, then skip_connect
        with torch.no_grad():
            for cell in cells_of(supernet):
                for edge, operations in cell.edge_operations.items():
                    alpha = torch.full((len(operations),), -3.0)
                    for op, value in ((ZERO_OPERATION, 2.0), ('sep_conv_3x3', 1.0), (SKIP_CONNECT, 0.0)):
                        alpha[operations.index(op)] = value
                    architecture_weights(cell)[edge].copy_(alpha)
        supernet = strategy.slots.schedule.next_stage_supernet(supernet, index)
    last = cells_of(supernet)
    assert len(last) == 5
    for cell in last:
        for edge, operations in cell.edge_operations.items():
            assert operations == [SKIP_CONNECT, 'sep_conv_3x3', ZERO_OPERATION]
            assert architecture_weights(cell)[edge].numel() == 3

    with torch.no_grad():  # the zero operation still the strongest at the end of the last stage
        for cell in last:
            for alpha in architecture_weights(cell).values():
                alpha.copy_(torch.tensor([0.0, 1.0, 2.0]))
    module = strategy.slots.schedule.stage_module(trial.ClassifierModule(0.1, 0.0, 0.9, 0.0), 2)
    module.set_model(supernet)
    exported = module.export()
    assert set(exported) == set(small_space().simplify())
    assert ZERO_OPERATION not in exported.values()
    assert {op for edges in cell_edges(exported).values() for _, _, op in edges} == {'sep_conv_3x3'}


def test_dropped_operations_are_never_built():
    built = []

    class Counting(ModelSpace):
        def __init__(self):
            super().__init__()
            from nni.nas.nn.pytorch import Cell
            factories = {name: (lambda node, op, source, name=name: built.append(name) or nn.Identity())
                         for name in ('a', 'b', 'c')}
            self.cell = Cell(factories, 2, 1, 2, 'all', label='normal')

    space = Counting()
    built.clear()
    surviving = {f'normal/{node}_{source}': ('a', ZERO_OPERATION) for node in (2, 3) for source in range(node)}
    DesignedCell.mutate(space.cell, 'cell', {}, {}, surviving=surviving, skip_limit=2, channels=None)
    assert built == ['a'] * 5  # one per edge: 2 edges into node 2, 3 into node 3


def test_each_stage_searches_deeper_with_fresh_weights():
    strategy = PDARTS(stages=[[3, None, 1, 0, 0.0], [4, 5, 1, 0, 0.4], [5, 3, 1, 0, 0.7]])
    first = strategy.mutate_model(small_space())
    second = strategy.slots.schedule.next_stage_supernet(first, 1)
    third = strategy.slots.schedule.next_stage_supernet(second, 2)
    assert [len(cells_of(net)) for net in (first, second, third)] == [3, 4, 5]
    assert first.stem[0].weight.data_ptr() != second.stem[0].weight.data_ptr()
    assert not torch.equal(first.stem[0].weight, second.stem[0].weight)


def test_a_space_without_a_depth_argument_runs_its_stages_at_its_own_depth(caplog):
    class Fixed(ModelSpace):
        def __init__(self):
            super().__init__()
            from nni.nas.nn.pytorch import Cell
            self.cell = Cell({'conv': lambda node, op, source: nn.Conv2d(4, 4, 3, padding=1),
                              SKIP_CONNECT: lambda node, op, source: nn.Identity()}, 2, 1, 1, 'all',
                             label='normal')

        def forward(self, x):
            return self.cell([x])

    strategy = PDARTS(stages=[[1, None, 1, 0, 0.0], [2, 2, 1, 0, 0.4]])
    with caplog.at_level('INFO', logger='nni_darts_ext.strategies.pdarts'):
        first = strategy.mutate_model(Fixed())
    assert 'no traced depth argument' in caplog.text
    second = strategy.slots.schedule.next_stage_supernet(first, 1)
    assert len(cells_of(second)) == 1 and second(torch.randn(1, 4, 5, 5)).shape == (1, 8, 5, 5)


def test_skip_connect_dropout_follows_the_reference_schedule():
    # a stage of 5 epochs, 2 of warm-up, at 0.7: 0.7 x (5 - e - 1) / 5, then 0.7 x exp(-0.2 (e - 2))
    rates = [skip_dropout_rate(0.7, epoch, 5, 2) for epoch in range(5)]
    assert rates == pytest.approx([0.56, 0.42, 0.7, 0.57311153, 0.46922403], abs=1e-8)
    # the paper's stage: 25 epochs, 10 of warm-up
    assert skip_dropout_rate(0.4, 0, 25, 10) == pytest.approx(0.384, abs=1e-12)
    assert skip_dropout_rate(0.4, 9, 25, 10) == pytest.approx(0.24, abs=1e-12)
    assert skip_dropout_rate(0.4, 15, 25, 10) == pytest.approx(0.4 * math.exp(-1.0), abs=1e-12)
    assert skip_dropout_rate(0.7, 3, 5, 0, decay=0.5) == pytest.approx(0.7 * math.exp(-1.5), abs=1e-12)
    assert skip_dropout_rate(0.0, 20, 25, 10) == 0.0


def test_dropout_follows_identity_skip_connects_only_and_acts_at_its_rate_in_training():
    supernet = PDARTS(stages=[[3, None, 1, 0, 0.0]]).mutate_model(small_space())
    wrapped = {}
    for cell in cells_of(supernet):
        for node, edges in zip(cell.output_node_indices, cell.ops):
            for source, edge in enumerate(edges):
                skip = edge[SKIP_CONNECT]
                wrapped[cell.label, node, source] = isinstance(skip, SkipConnectDropout)
                if not wrapped[cell.label, node, source]:
                    assert isinstance(skip, FactorizedReduce) and sum(p.numel() for p in skip.parameters()) > 0
    labels = {label for label, _, _ in wrapped}
    assert labels == {'normal', 'reduce'}
    # the reduce cell's skip-connects from the cell inputs (sources 0, 1) are stride 2
    assert wrapped == {(label, node, source): label == 'normal' or source >= 2 for label, node, source in wrapped}

    dropouts = [m for m in supernet.modules() if isinstance(m, SkipConnectDropout)]
    for module in dropouts:
        module.p = 0.3
    x = torch.ones(200_000)
    torch.manual_seed(0)
    supernet.train()
    out = dropouts[0](x)
    assert float((out == 0).float().mean()) == pytest.approx(0.3, abs=0.01)
    torch.testing.assert_close(out[out != 0], torch.full_like(out[out != 0], 1 / 0.7))
    supernet.eval()
    assert torch.equal(dropouts[0](x), x)


class DropoutRates(pl.Callback):
    """The rate of every skip-connect dropout module at each training step."""

    def __init__(self):
        self.seen: list[tuple[int, set[float]]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        rates = {m.p for m in pl_module.model.modules() if isinstance(m, SkipConnectDropout)}
        self.seen.append((trainer.current_epoch, rates))


def test_search_runs_its_stages_deeper_with_the_dropout_schedule(quick_parameters):
    config, _ = split_parameters({**quick_parameters, 'train_subset': 128})
    data = trial.load_dataset(config.dataset, train_subset=128, test_subset=64)
    space = load_space(config.space, data.channels, data.num_classes, data.image_size)
    rates, records = DropoutRates(), []
    evaluator = trial.search_evaluator(data, config, [rates, trial.EpochReporter('search', records)])
    strategy = PDARTS(stages=TWO_STAGES, arc_learning_rate=6e-4)
    search = strategy.mutate_evaluator(evaluator)
    search.evaluate(strategy.mutate_model(space.search_space()))

    assert [(r['stage'], r['cells']) for r in records] == [(1, 3), (2, 4), (2, 4), (2, 4)]
    assert [r['epoch'] for r in records] == [1, 2, 3, 4]
    # stage 2 (3 epochs, 1 of warm-up): 0.6 x (3 - 0 - 1) / 3 in warm-up, then 0.6 x exp(-0.2 (e - 1))
    expected = [0.0, 0.4, 0.6, 0.6 * math.exp(-0.2)]
    assert [r['skip_dropout'] for r in records] == pytest.approx(expected)
    steps_per_epoch = len(rates.seen) // 4
    for epoch_index, (_, seen) in enumerate(rates.seen[::steps_per_epoch]):
        assert len(seen) == 1 and seen.pop() == pytest.approx(expected[epoch_index])
    assert len(strategy.slots.schedule.stage_seconds) == 2 and all(s > 0 for s in strategy.slots.schedule.stage_seconds)
    final_cells = cells_of(search.module.model)
    assert len(final_cells) == 4 and all(len(ops) <= 5 for c in final_cells for ops in c.edge_operations.values())


def set_normal_cell(supernet: nn.Module, skips: dict[tuple[int, int], float]) -> None:
    """Normal-cell weights where edge (node, source) in ``skips`` has skip-connect as its best
    operation at that weight; every other edge, sep_conv_3x3 weaker than any chosen skip."""
    with torch.no_grad():
        for cell in cells_of(supernet):
            if cell.label != 'normal':
                continue
            for edge, operations in cell.edge_operations.items():
                node, source = map(int, edge.split('/')[1].split('_'))
                alpha = torch.full((len(operations),), -5.0)
                alpha[operations.index('sep_conv_3x3')] = 0.0
                alpha[operations.index('sep_conv_5x5')] = -0.5
                if (node, source) in skips:
                    alpha[operations.index(SKIP_CONNECT)] = skips[(node, source)]
                architecture_weights(cell)[edge].copy_(alpha)


def test_derivation_limits_the_normal_cell_to_m_skip_connects():
    four_skips = {(2, 0): 3.0, (2, 1): 2.0, (3, 0): 4.0, (4, 1): 1.0}
    unlimited = PDARTS(stages=[[3, None, 1, 0, 0.0]], skip_limit=None)
    net = unlimited.mutate_model(small_space())
    set_normal_cell(net, four_skips)
    free = unlimited.configure_oneshot_module(trial.ClassifierModule(0.1, 0.0, 0.9, 0.0))
    free.set_model(net)
    assert skip_connects(free.export()) == 4

    limited = PDARTS(stages=[[3, None, 1, 0, 0.0]], skip_limit=2)
    net = limited.mutate_model(small_space())
    set_normal_cell(net, four_skips)
    module = limited.configure_oneshot_module(trial.ClassifierModule(0.1, 0.0, 0.9, 0.0))
    module.set_model(net)
    exported = module.export()
    kept = {(source, node) for source, node, op in cell_edges(exported)['normal'] if op == SKIP_CONNECT}
    assert kept == {(0, 3), (0, 2)}  # the two strongest stay
    assert skip_connects(exported) == 2
    # node 2's weaker skip gives way to the edge's next-best operation; node 4's to a better edge
    assert ('sep_conv_3x3' in {op for source, node, op in cell_edges(exported)['normal'] if node == 2})
    assert len([1 for source, node, op in cell_edges(exported)['normal'] if node == 4]) == 2
    assert set(exported) == set(small_space().simplify())


def test_fixed_seed_gives_the_same_result_twice(quick_parameters, tmp_path):
    parameters = {**quick_parameters, 'train_subset': 128, 'variant': 'pdarts',
                  'stages': [[3, None, 1, 0, 0.0], [4, 3, 1, 0, 0.4]]}
    results = []
    for run in ('a', 'b'):
        config, options = split_parameters(parameters)
        final = trial.run(config, options, tmp_path / run)
        epochs = json.loads((tmp_path / run / 'metrics.json').read_text())['epochs']
        results.append((final['arch'], final['default'], [(e['default'], e.get('stage')) for e in epochs]))
    assert results[0] == results[1]
    assert [stage for _, stage in results[0][2]] == [1, 2, None]  # two stages of one epoch, then retraining
    assert len(final['stage_s']) == 2


def test_a_resumed_search_reads_its_checkpoint_as_data_only(tmp_path):
    """The stage comes from the checkpoint through torch's weights-only unpickler: an object in it is refused, never built."""
    created = tmp_path / 'created-by-the-checkpoint'
    checkpoint = tmp_path / 'last.ckpt'
    torch.save({'state_dict': {}, 'pdarts': {'stage': 1, 'surviving': CreatesFile(created), 'stage_seconds': [1.0]}},
               checkpoint)
    strategy = PDARTS(stages=TWO_STAGES)
    supernet = strategy.mutate_model(small_space())
    search = strategy.mutate_evaluator(tiny_evaluator())
    search.fit_kwargs = {'ckpt_path': str(checkpoint)}
    with pytest.raises(ConfigError, match=f'^resume: {checkpoint} \\(UnpicklingError: .*\\) is not a checkpoint of a '
                                          'P-DARTS search$'):
        search.evaluate(supernet)
    assert not created.exists()


@pytest.mark.parametrize('stages, message', [
    ('quick', "unknown P-DARTS stage preset 'quick'; accepted: budget, cpu, paper"),
    ([], 'at least one stage'),
    ([[3, None, 2, 2, 0.0]], 'warmup_epochs must be an integer from 0 to epochs - 1 (1), got 2'),
    ([[3, None, 2, 1, 1.5]], 'skip_dropout must be in [0, 1)'),
    ([[3, None, 2, 1, 0.0], [4, None, 2, 1, 0.0]], 'operations must be a positive integer after the first stage'),
    ([[3, 5, 2, 1, 0.0], [4, 6, 2, 1, 0.0]], 'cannot grow back'),
    ([{'cells': 3, 'epochs': 2}], "missing field 'operations'"),
    ([[3, None, 2]], 'give [cells, operations, epochs, warmup_epochs, skip_dropout]'),
    ([3], 'P-DARTS stage 1 is 3; give [cells'),
    (3, 'stages must be budget, a preset (paper, cpu) or a list of stages, got 3'),
])
def test_impossible_stages_are_refused_by_name(stages, message):
    with pytest.raises(ConfigError) as error:
        PDARTS(stages=stages)
    assert message in str(error.value)


def test_other_impossible_settings_are_refused():
    with pytest.raises(ConfigError, match='per stage'):
        PDARTS(warmup_epochs=3)
    with pytest.raises(ConfigError, match='skip_limit must be a non-negative integer'):
        PDARTS(skip_limit=-1)


def test_paper_defaults_and_parsing():
    assert make_strategy('pdarts').slots.schedule.from_budget and make_strategy('pdarts').slots.schedule.stages is None  # until the evaluator
    strategy = make_strategy('pdarts', stages='paper')
    assert strategy.slots.schedule.stages == PAPER_STAGES and not strategy.slots.schedule.from_budget
    assert [(s.cells, s.operations, s.epochs, s.warmup_epochs, s.skip_dropout) for s in strategy.slots.schedule.stages] == [
        (5, None, 25, 10, 0.0), (11, 5, 25, 10, 0.4), (17, 3, 25, 10, 0.7)]
    assert (strategy.slots.cells.skip_limit, strategy.arc_learning_rate) == (2, 6e-4)
    assert parse_stages([{'cells': 2, 'operations': None, 'epochs': 3, 'warmup_epochs': 1, 'skip_dropout': 0.1}]) == (
        Stage(2, None, 3, 1, 0.1),)
    assert CPU_VARIANT_SETTINGS['pdarts']['stages'] != 'paper'


def test_pdarts_runs_in_nas_experiment_on_nnis_hub_darts_space():
    """The Python route: NasExperiment with PDARTS() on nni.nas.hub.pytorch.DARTS, growing 3 -> 4 cells."""
    strategy = PDARTS(stages=[[3, None, 1, 0, 0.0], [4, 3, 1, 0, 0.4]])
    architecture, _ = search_hub_darts(strategy)
    assert set(architecture) == hub_darts_labels()
    assert len(strategy.slots.schedule.stage_seconds) == 2
    last_cells = cells_of(strategy.oneshot_module.model)
    assert len(last_cells) == 4 and all(len(ops) == 3 for c in last_cells for ops in c.edge_operations.values())


def layers_of(supernet: nn.Module) -> dict[str, DesignedLayer]:
    return {m.label: m for m in supernet.modules() if isinstance(m, DesignedLayer)}


def set_alphas(supernet: nn.Module, values: dict[str, list[float]]) -> None:
    with torch.no_grad():
        for label, alpha in values.items():
            layers_of(supernet)[label]._arch_alpha.copy_(torch.tensor(alpha))


def export_of(strategy: PDARTS, supernet: nn.Module, stage: int) -> dict:
    module = strategy.slots.schedule.stage_module(trial.ClassifierModule(0.1, 0.0, 0.9, 0.0), stage)
    module.set_model(supernet)
    return module.export()


@pytest.mark.parametrize('build, names', [
    (ListChoices, {'first': [0, 1, 2], 'second': [0, 1]}),
    (DictChoices, {'first': ['conv3x3', 'conv1x1', 'max_pool'], 'second': ['conv3x3', 'skip']}),
])
def test_free_layer_choices_keep_their_strongest_candidates_and_the_export_picks_among_them(build, names):
    strategy = PDARTS(stages=[[1, None, 1, 0, 0.0], [1, 2, 1, 0, 0.4]])
    first = strategy.mutate_model(build())
    assert {label: layer.names for label, layer in layers_of(first).items()} == names
    # first: the third candidate strongest, then the first; second: 2 candidates, no more than the stage keeps
    set_alphas(first, {'first': [0.0, -1.0, 2.0], 'second': [3.0, 0.0]})
    second = strategy.slots.schedule.next_stage_supernet(first, 1)
    first_names, second_names = names['first'], names['second']
    kept = {'first': [first_names[0], first_names[2]], 'second': second_names}
    layers = layers_of(second)
    assert {label: layer.names for label, layer in layers.items()} == kept
    assert [architecture_weights(layer).numel() for layer in layers.values()] == [2, 2]
    assert str(first_names[1]) not in layers['first']._modules  # the dropped candidate left the supernet
    assert isinstance(layers['first'][first_names[2]], nn.MaxPool2d)
    assert isinstance(layers['second'][second_names[1]], SkipConnectDropout)  # the identity candidate

    set_alphas(second, {'first': [0.0, 1.0], 'second': [0.0, 3.0]})
    exported = export_of(strategy, second, 1)
    assert exported == {'first': first_names[2], 'second': second_names[1]}
    frozen = build().freeze(exported)
    assert isinstance(frozen.first, nn.MaxPool2d) and isinstance(frozen.second, nn.Identity)


def test_a_choice_nested_in_a_dropped_candidate_leaves_with_it():
    strategy = PDARTS(stages=[[1, None, 1, 0, 0.0], [1, 1, 1, 0, 0.0]])
    first = strategy.mutate_model(Nested())
    assert set(layers_of(first)) == {'outer', 'inner'}
    set_alphas(first, {'outer': [0.0, 1.0], 'inner': [1.0, 0.0]})  # skip beats the nested candidate
    second = strategy.slots.schedule.next_stage_supernet(first, 1)
    assert {label: layer.names for label, layer in layers_of(second).items()} == {'outer': ['skip']}
    exported = export_of(strategy, second, 1)
    assert exported == {'outer': 'skip'}
    assert isinstance(Nested().freeze(exported).outer, nn.Identity)

    set_alphas(first, {'outer': [1.0, 0.0], 'inner': [0.0, 1.0]})  # the nested candidate wins: both are pruned
    second = strategy.slots.schedule.next_stage_supernet(first, 1)
    assert {label: layer.names for label, layer in layers_of(second).items()} == {'outer': ['nested'],
                                                                                  'inner': ['conv1x1']}
    assert export_of(strategy, second, 1) == {'outer': 'nested', 'inner': 'conv1x1'}


def test_repeated_blocks_are_pruned_and_the_depth_is_searched_whole():
    strategy = PDARTS(stages=[[1, None, 1, 0, 0.0], [1, 1, 1, 0, 0.0]])
    first = strategy.mutate_model(Repeated())
    set_alphas(first, {'block0': [1.0, 0.0], 'block1': [0.0, 1.0], 'block2': [0.0, 1.0]})
    second = strategy.slots.schedule.next_stage_supernet(first, 1)
    assert {label: layer.names for label, layer in layers_of(second).items()} == {
        'block0': ['conv3x3'], 'block1': ['conv1x1'], 'block2': ['conv1x1']}
    depth = next(m for m in second.modules() if isinstance(m, DifferentiableMixedRepeat))
    assert architecture_weights(depth)['depth'].numel() == 3
    with torch.no_grad():
        architecture_weights(depth)['depth'].copy_(torch.tensor([0.0, 1.0, 0.0]))
    exported = export_of(strategy, second, 1)
    assert exported == {'depth': 2, 'block0': 'conv3x3', 'block1': 'conv1x1', 'block2': 'conv1x1'}
    assert len(Repeated().freeze(exported).blocks) == 2


def test_free_layer_choices_take_partial_channels_in_pdarts_pcdarts():
    strategy = make_strategy('pdarts+pcdarts', k=2, stages=[[1, None, 1, 0, 0.0], [1, 2, 1, 0, 0.0]])
    layer = layers_of(strategy.mutate_model(DictChoices()))['first']
    assert layer.channels.k == 2 and layer['conv3x3'][0].in_channels == 2  # CHANNELS = 4, half through the candidates
    assert set(search_once(strategy, DictChoices)) == {'first', 'second'}


@pytest.mark.parametrize('name', USER_SPACES)
def test_every_user_space_searches_in_stages_and_freezes_on_a_fresh_space(name):
    build = USER_SPACES[name]
    strategy = make_strategy('pdarts', stages=[[1, None, 1, 0, 0.0], [1, 2, 1, 0, 0.0]])
    architecture = search_once(strategy, build)
    assert set(architecture) == set(build().simplify())
    assert len(strategy.slots.schedule.stage_seconds) == 2


@pytest.mark.parametrize('max_epochs, stages', [
    (1, [(5, None, 1, 0, 0.0)]),
    (2, [(5, None, 1, 0, 0.0), (17, 3, 1, 0, 0.7)]),
    (3, [(5, None, 1, 0, 0.0), (11, 5, 1, 0, 0.4), (17, 3, 1, 0, 0.7)]),
    (10, [(5, None, 3, 1, 0.0), (11, 5, 3, 1, 0.4), (17, 3, 4, 2, 0.7)]),
    (75, [(5, None, 25, 10, 0.0), (11, 5, 25, 10, 0.4), (17, 3, 25, 10, 0.7)]),
])
def test_the_budget_splits_max_epochs_in_the_papers_proportions(max_epochs, stages):
    assert budget_stages(max_epochs) == tuple(Stage(*stage) for stage in stages)
    assert sum(stage.epochs for stage in budget_stages(max_epochs)) == max_epochs
    assert budget_stages(75) == PAPER_STAGES


@pytest.mark.parametrize('max_epochs', [None, 0, 2.5, True])
def test_a_budget_without_positive_whole_epochs_is_refused(max_epochs):
    with pytest.raises(ConfigError, match=f"budget splits the evaluator's max_epochs, which is {max_epochs!r}; "
                                          'set max_epochs to a positive integer or give stages'):
        budget_stages(max_epochs)


def test_the_default_stages_come_from_the_evaluators_max_epochs(caplog):
    strategy = make_strategy('pdarts')
    with caplog.at_level('INFO', logger='nni_darts_ext.strategies.pdarts'):
        search_once(strategy, ListChoices, tiny_evaluator(max_epochs=2))
    assert strategy.slots.schedule.stages == budget_stages(2) and len(strategy.slots.schedule.stage_seconds) == 2
    assert ("P-DARTS runs stages of 1+1 epochs (0+0 of warm-up) at the space's own depth "
            "(the evaluator's max_epochs=2 split)") in caplog.text


@pytest.mark.parametrize('stages, expected', [
    ('cpu', CPU_STAGES), ([[2, None, 1, 0, 0.0]], (Stage(2, None, 1, 0, 0.0),)),
])
def test_given_stages_win_over_the_evaluators_max_epochs(stages, expected, caplog):
    strategy = make_strategy('pdarts', stages=stages)
    with caplog.at_level('INFO', logger='nni_darts_ext.strategies.pdarts'):
        strategy.mutate_model(small_space())
        strategy.mutate_evaluator(tiny_evaluator(max_epochs=10))
    assert strategy.slots.schedule.stages == expected
    assert "(stages as given; the evaluator's max_epochs=10 is not used)" in caplog.text


@pytest.mark.parametrize('options, stages', [({}, budget_stages(10)), ({'stages': 'cpu'}, CPU_STAGES)])
def test_the_trial_splits_search_epochs_unless_stages_are_given(quick_parameters, options, stages, caplog):
    config, parsed = split_parameters({**quick_parameters, 'variant': 'pdarts', 'search_epochs': 10, **options})
    with caplog.at_level(logging.INFO, logger='nni_darts_ext'):
        strategy, data, *_ = trial.prepare(config, parsed)
    assert ('search_epochs (10) is not used' in caplog.text) == bool(options)
    strategy.mutate_evaluator(trial.search_evaluator(data, config, []))
    assert strategy.slots.schedule.stages == stages
