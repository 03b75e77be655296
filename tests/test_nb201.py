"""NAS-Bench-201's ground truth: NNI's labels read as NB201's cells, pinned on the published table."""

from __future__ import annotations

import json

import pytest

from nni_darts_ext import trial
from nni_darts_ext.errors import ConfigError
from nni_darts_ext.nb201 import load_table, nb201_string, nni_architecture

from .nb201_table import nb201_csv

EDGES = ('cell/0_1', 'cell/0_2', 'cell/1_2', 'cell/0_3', 'cell/1_3', 'cell/2_3')


def cell(*operations: str) -> dict[str, str]:
    """An architecture of nni:NasBench201, its operations in the order of :data:`EDGES`."""
    return dict(zip(EDGES, operations))


# the table's optimum (shared by two cells), NB201's DARTS collapse, and a cell whose every path runs through `none`
OPTIMUM = cell('conv_3x3', 'conv_3x3', 'conv_3x3', 'skip_connect', 'conv_3x3', 'conv_1x1')
ALL_SKIP = cell(*['skip_connect'] * 6)
DISCONNECTED = cell('none', 'none', 'conv_1x1', 'none', 'none', 'conv_3x3')


def test_nb201_strings_read_back_to_the_architectures_they_name():
    for architecture in (OPTIMUM, DISCONNECTED):
        assert nni_architecture(nb201_string(architecture)) == architecture


@pytest.mark.parametrize('cell', ['|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|',
                                  '|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|',
                                  '|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|',
                                  '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|'])
def test_a_string_that_is_not_an_nb201_cell_is_refused_in_one_line(cell):
    with pytest.raises(ConfigError, match=r'is not an NB201 cell string; accepted: \|op~0\|'):
        nni_architecture(cell)


def test_labels_map_to_nb201_strings_edge_by_edge():
    assert nb201_string(OPTIMUM) == ('|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|'
                                     '+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|')
    assert nb201_string(DISCONNECTED) == '|none~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|'


@pytest.mark.parametrize('architecture, cifar10, cifar100, imagenet, percentile', [
    (OPTIMUM, 94.3733, 73.22, 46.7111, 100 * (15623 + 1) / 15625),  # two cells share the maximum
    (ALL_SKIP, 54.2967, 15.6067, 16.3222, None),
    (DISCONNECTED, 10.0, 1.0, 0.8333, 100 * 341 / 2 / 15625),  # the 341 disconnected cells tie at the bottom
])
def test_known_cells_score_their_published_accuracies(architecture, cifar10, cifar100, imagenet, percentile):
    scores = load_table(nb201_csv()).score(architecture)
    assert (scores['nb201_cifar10'], scores['nb201_cifar100'], scores['nb201_imagenet16_120']) == \
        pytest.approx((cifar10, cifar100, imagenet), abs=1e-4)
    if percentile is not None:
        assert scores['nb201_cifar10_percentile'] == pytest.approx(percentile, abs=0.01)
    assert 0 <= scores['nb201_cifar100_percentile'] <= 100


def test_percentiles_count_ties_half(tmp_path):
    path = tmp_path / 'table.csv'
    path.write_text('arch,cifar10_test\na,10\nb,20\nc,20\nd,30\n')
    table = load_table(path)
    assert [table.percentile('cifar10', v) for v in (5, 10, 20, 30, 35)] == [0, 12.5, 50, 87.5, 100]


@pytest.mark.parametrize('content, message', [
    (None, 'cannot be read'),
    ('', 'needs an arch column'),
    ('arch,cifar10_valid\nx,1\n', 'needs an arch column and at least one DATASET_test column'),
    ('arch,cifar10_test\nx,ninety\n', 'line 2: every DATASET_test column must be an accuracy'),
    ('arch,cifar10_test\nx,nan\n', 'line 2'),
    ('arch,cifar10_test\nx,140\n', 'from 0 to 100'),
    (b'\xff\xfe\x00garbage', 'is not a readable CSV'),
])
def test_a_missing_or_malformed_table_is_one_line(content, message, tmp_path):
    path = tmp_path / 'table.csv'
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_table(path)


def test_a_table_without_the_cell_and_an_architecture_of_another_space_are_refused(tmp_path):
    path = tmp_path / 'table.csv'
    path.write_text('arch,cifar10_test\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,10\n')
    with pytest.raises(ConfigError, match='lacks the cell'):
        load_table(path).score(ALL_SKIP)
    with pytest.raises(ConfigError, match='not a cell of nni:NasBench201: cell/0_1'):
        load_table(path).score({'normal/op_2_0': 'sep_conv_3x3'})


SEARCH_ONLY = {'dataset': 'digits', 'space': 'nni:NasBench201', 'search_width': 4, 'search_cells': 1,
               'retrain_width': 4, 'retrain_cells': 1, 'train_subset': 128, 'test_subset': 64, 'batch_size': 32,
               'search_epochs': 1, 'retrain_epochs': 0, 'accelerator': 'cpu'}


def run_tuned(parameters: dict, output_dir, monkeypatch) -> int:
    monkeypatch.setattr(trial.nni, 'get_next_parameter', lambda: parameters)
    return trial.main(['--output-dir', str(output_dir)])


def test_a_search_only_trial_reports_the_ground_truth_and_does_not_retrain(tmp_path, monkeypatch, capsys):
    table = nb201_csv()
    assert run_tuned({**SEARCH_ONLY, 'nb201_table': str(table)}, tmp_path / 'out', monkeypatch) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert {record['phase'] for record in metrics['epochs']} == {'search'}
    found = json.loads((tmp_path / 'out' / 'arch.json').read_text())['architecture']
    scores = load_table(table).score(found)
    assert {name: final[name] for name in scores} == scores
    assert final['default'] == pytest.approx(scores['nb201_cifar10'] / 100)
    assert final['unconstrained_nb201_cifar10'] == scores['nb201_cifar10'] or final['arch'] != final['unconstrained_arch']


def test_ground_truth_on_another_space_and_a_random_trial_that_measures_nothing_are_refused(tmp_path, monkeypatch,
                                                                                          capsys):
    assert run_tuned({**SEARCH_ONLY, 'space': 'darts_small', 'search_width': None, 'search_cells': None,
                      'retrain_width': None, 'retrain_cells': None, 'nb201_table': 'table.csv'},
                     tmp_path / 'a', monkeypatch) == 2
    assert capsys.readouterr().err.strip() == ('error: nb201_table scores cells of nni:NasBench201; this trial '
                                               'searches darts_small: leave nb201_table unset')
    assert run_tuned({**SEARCH_ONLY, 'variant': 'random'}, tmp_path / 'b', monkeypatch) == 2
    assert 'with retrain_epochs 0 and no nb201_table' in capsys.readouterr().err
    assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()
