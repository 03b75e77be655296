"""Never a disconnected network: the connectivity test, the rule's order of alternatives, and the trial."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from nni_darts_ext import trial
from nni_darts_ext.connected import MAX_ALTERNATIVES, NoConnectedArchitecture, by_joint_probability, first_connected, \
    is_connected
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.strategies.random_architecture import RandomArchitecture

from .test_nb201 import ALL_SKIP, DISCONNECTED, EDGES, OPTIMUM

OPERATIONS = ('none', 'skip_connect', 'conv_1x1', 'conv_3x3', 'avg_pool_3x3')
SPACE = load_space('nni:NasBench201', 3, 10, 8)
SMALL = Size(4, 1)


def reaches_the_output(architecture: dict[str, str]) -> bool:
    """The reference: a path of edges that are not ``none`` leads from node 0 to node 3 (``cell/I_J``: I into J)."""
    reached = {0}
    for node in (1, 2, 3):
        if any(architecture[f'cell/{source}_{node}'] != 'none' and source in reached for source in range(node)):
            reached.add(node)
    return 3 in reached


def connected(architecture: dict[str, str]) -> bool:
    return is_connected(SPACE.evaluation_model(architecture, SMALL), (3, 8, 8))


@pytest.mark.parametrize('architecture', [OPTIMUM, ALL_SKIP, DISCONNECTED,
                                          {**dict.fromkeys(EDGES, 'none'), 'cell/0_3': 'avg_pool_3x3'},
                                          {**dict.fromkeys(EDGES, 'none'), 'cell/0_1': 'conv_3x3', 'cell/1_2': 'skip_connect'},
                                          {**dict.fromkeys(EDGES, 'none'), 'cell/0_1': 'conv_1x1', 'cell/1_3': 'conv_1x1'}])
def test_the_network_is_connected_exactly_when_a_path_avoids_none(architecture):
    assert connected(architecture) == reaches_the_output(architecture)


def test_alternatives_come_in_order_of_joint_probability():
    probabilities = {'a': {'x': 0.6, 'y': 0.4}, 'b': {'u': 0.7, 'v': 0.2, 'w': 0.1}, 'c': {'only': 1.0}}
    found = {'a': 'x', 'b': 'u', 'c': 'only', 'fixed': 3}
    order = [(c['a'], c['b']) for c in by_joint_probability(found, probabilities)]
    expected = sorted(itertools.product('xy', 'uvw'), key=lambda ab: -probabilities['a'][ab[0]] * probabilities['b'][ab[1]])
    assert order == expected
    assert all(c['c'] == 'only' and c['fixed'] == 3 for c in by_joint_probability(found, probabilities))


def test_candidates_of_probability_zero_are_never_offered():
    probabilities = {'a': {'x': 0.5, 'y': 0.5, 'dropped': 0.0}}
    assert [c['a'] for c in by_joint_probability({'a': 'x'}, probabilities)] == ['x', 'y']


def test_the_most_probable_connected_cell_replaces_a_disconnected_one():
    # a search that prefers the disconnected cell: each of its edges' operations at 0.5, the others at 0.125
    probabilities = {edge: {op: 0.5 if op == DISCONNECTED[edge] else 0.125 for op in OPERATIONS} for edge in EDGES}
    chosen = first_connected(itertools.chain([DISCONNECTED], by_joint_probability(DISCONNECTED, probabilities)), connected)

    def log_probability(architecture):
        return sum(math.log(probabilities[edge][architecture[edge]]) for edge in EDGES)
    every_cell = [dict(zip(EDGES, ops)) for ops in itertools.product(OPERATIONS, repeat=len(EDGES))]
    best = max(log_probability(a) for a in every_cell if reaches_the_output(a))
    assert reaches_the_output(chosen) and log_probability(chosen) == pytest.approx(best)
    assert chosen != DISCONNECTED


def test_a_space_of_nothing_but_disconnected_cells_fails_after_the_limit():
    tried = []
    with pytest.raises(NoConnectedArchitecture, match='no path leads from input to output'):
        first_connected(({'n': i} for i in itertools.count()), lambda a: tried.append(a) or False)
    assert len(tried) == MAX_ALTERNATIVES


def test_a_trial_reports_the_disconnected_draw_and_retrains_a_connected_one(tmp_path, monkeypatch, capsys):
    space = SPACE.search_space(SMALL)
    seed = next(s for s in range(10_000) if not reaches_the_output(RandomArchitecture(seed=s).sample(space)))
    parameters = {'variant': 'random', 'seed': seed, 'dataset': 'digits', 'space': 'nni:NasBench201',
                  'retrain_width': 4, 'retrain_cells': 1, 'train_subset': 64, 'test_subset': 32, 'batch_size': 32,
                  'retrain_epochs': 1, 'accelerator': 'cpu'}
    monkeypatch.setattr(trial.nni, 'get_next_parameter', lambda: parameters)
    assert trial.main(['--output-dir', str(tmp_path)]) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    architecture = json.loads((tmp_path / 'arch.json').read_text())['architecture']
    assert reaches_the_output(architecture) and final['arch'] != final['unconstrained_arch']
    unconstrained = dict(pair.split('=') for pair in final['unconstrained_arch'].split())
    assert unconstrained == RandomArchitecture(seed=seed).sample(space) and not reaches_the_output(unconstrained)


def test_a_search_that_exports_a_disconnected_cell_hands_on_its_most_probable_connected_one(tmp_path, monkeypatch,
                                                                                           capsys):
    from nni_darts_ext.strategies.search_module import SearchModule
    monkeypatch.setattr(SearchModule, 'export', lambda self: dict(DISCONNECTED))
    seen = {}
    export_probs = SearchModule.export_probs
    monkeypatch.setattr(SearchModule, 'export_probs', lambda self: seen.setdefault('probabilities', export_probs(self)))
    parameters = {'variant': 'darts', 'dataset': 'digits', 'space': 'nni:NasBench201', 'search_width': 4,
                  'search_cells': 1, 'retrain_width': 4, 'retrain_cells': 1, 'train_subset': 128, 'test_subset': 32,
                  'batch_size': 32, 'search_epochs': 1, 'retrain_epochs': 1, 'accelerator': 'cpu'}
    monkeypatch.setattr(trial.nni, 'get_next_parameter', lambda: parameters)
    assert trial.main(['--output-dir', str(tmp_path)]) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    found = json.loads((tmp_path / 'arch.json').read_text())['architecture']
    assert dict(pair.split('=') for pair in final['unconstrained_arch'].split()) == DISCONNECTED
    expected = next(a for a in by_joint_probability(DISCONNECTED, seen['probabilities']) if reaches_the_output(a))
    assert found == expected
