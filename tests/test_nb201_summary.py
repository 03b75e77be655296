"""The ground-truth report: each variant's found cells summarized against hand-computed figures."""

from __future__ import annotations

import pytest

from nni_darts_ext import report
from nni_darts_ext.errors import ConfigError
from nni_darts_ext.nb201 import load_table, nb201_string
from nni_darts_ext.nb201_summary import format_table, summarize

from .test_nb201 import EDGES
from .test_report import make_experiment

OPERATIONS = ('none', 'skip_connect', 'conv_1x1', 'conv_3x3', 'avg_pool_3x3')


def cell_number(n: int) -> dict[str, str]:
    """The ``n`` -th of ten cells: every edge ``conv_3x3`` but the last, which counts in base 5."""
    return {**dict.fromkeys(EDGES, 'conv_3x3'), 'cell/1_3': OPERATIONS[n // 5], 'cell/2_3': OPERATIONS[n % 5]}


def result(variant: str, seed: int, n: int, search_s: float, reconnected: bool = False) -> dict:
    arch = ' '.join(f'{label}={op}' for label, op in sorted(cell_number(n).items()))
    return {'default': 0.5, 'variant': variant, 'seed': seed, 'search_s': search_s, 'arch': arch,
            'unconstrained_arch': 'cell/0_1=none' if reconnected else arch}


@pytest.fixture
def table(tmp_path):
    """Ten cells at CIFAR-10 accuracies 1, 2, ..., 10 and CIFAR-100 accuracies 10 times those."""
    path = tmp_path / 'table.csv'
    path.write_text('arch,cifar10_test,cifar100_test\n' + ''.join(
        f'{nb201_string(cell_number(n))},{n + 1},{10 * (n + 1)}\n' for n in range(10)))
    return load_table(path)


RESULTS = [result('random', 0, 0, 0.1), result('random', 1, 1, 0.1),
           result('darts', 0, 9, 30.0), result('darts', 1, 3, 20.0, reconnected=True), result('darts', 2, 5, 10.0),
           result('nni-darts', 0, 2, 40.0)]


def test_each_variant_by_median_quartiles_percentile_and_a_test_against_random(table):
    rows = {row.variant: row for row in summarize(RESULTS, table)}
    darts = rows['darts']
    assert darts.accuracies == (10, 4, 6) and darts.median == 6 and darts.quartiles == (5, 8)
    assert darts.median_percentile == 55  # 5 of 10 cells below 6, one tie counting half
    assert darts.top_decile == pytest.approx(1 / 3)  # only the cell at 10 is at or above the 90th percentile
    assert darts.other_medians == {'cifar100': 60}
    # every darts cell above both random cells: U = 6 of 6 pairs, the exact one-sided p is 1 / C(5, 2)
    assert darts.p_above_random == pytest.approx(0.1)
    assert darts.search_ratio == pytest.approx(20 / 40) and darts.reconnected == 1
    assert rows['random'].p_above_random is None and rows['random'].reconnected == 0
    assert [row.variant for row in summarize(RESULTS, table)] == ['darts', 'nni-darts', 'random']


def test_the_table_has_a_row_per_variant_and_the_report_prints_it(table, tmp_path, monkeypatch, capsys):
    lines = format_table(summarize(RESULTS, table), table).splitlines()
    assert lines[0].startswith('| variant | searches | cifar10 median | IQR | median percentile | top 10 % |')
    assert lines[2] == '| darts | 3 | 6.00 | 5.00–8.00 | 55.0 | 33 % | 0.1 | 60.00 | 0.50 | 1 |'
    monkeypatch.setattr(report, 'final_results', lambda *_: RESULTS)
    assert report.main(['abc123', '--nb201-table', str(table.path), '--png', str(tmp_path / 'chart.png')]) == 0
    assert lines[2] in capsys.readouterr().out


def test_a_report_of_cells_outside_the_table_is_one_line(table, tmp_path, capsys):
    make_experiment(tmp_path)  # results without an NB201 architecture
    assert report.main(['abc123', '--nni-home', str(tmp_path), '--nb201-table', str(table.path)]) == 2
    assert capsys.readouterr().err.strip().startswith('error: the architecture is not a cell of nni:NasBench201')
    with pytest.raises(ConfigError, match='cannot be read'):
        load_table(tmp_path / 'missing.csv')
