from __future__ import annotations

import json
import sqlite3

import pytest

from nni_darts_ext import report
from nni_darts_ext.errors import ConfigError

RESULTS = [
    {'default': 0.90, 'variant': 'darts', 'seed': 0, 'search_s': 10.0, 'retrain_s': 4.0, 'params': 1000},
    {'default': 0.94, 'variant': 'darts', 'seed': 1, 'search_s': 12.0, 'retrain_s': 6.0, 'params': 1200},
    {'default': 0.80, 'variant': 'random', 'seed': 0, 'search_s': 0.5, 'retrain_s': 5.0, 'params': 900},
]


def test_summary_is_mean_and_sample_std_over_seeds_best_first():
    rows = report.summarize(RESULTS)
    assert [r.variant for r in rows] == ['darts', 'random']
    darts = rows[0]
    assert darts.seeds == 2 and darts.accuracy_mean == pytest.approx(0.92)
    assert darts.accuracy_std == pytest.approx(0.0282843, rel=1e-5)
    assert (darts.search_s, darts.retrain_s, darts.params) == (11.0, 5.0, 1100)
    table = report.format_table(rows)
    assert '| darts | 2 | 92.00 ± 2.83 | 11.0 | 5.0 | 1,100 |' in table


def make_experiment(home, experiment_id='abc123'):
    database = home / experiment_id / 'db' / 'nni.sqlite'
    database.parent.mkdir(parents=True)
    with sqlite3.connect(database) as connection:
        connection.execute('CREATE TABLE MetricData (timestamp integer, trialJobId text, parameterId text, '
                           'type text, sequence integer, data text)')
        for i, result in enumerate(RESULTS):
            # NNI stores the reported dict as a JSON string, itself JSON-encoded
            connection.execute('INSERT INTO MetricData VALUES (0, ?, ?, ?, 0, ?)',
                               (f't{i}', str(i), 'FINAL', json.dumps(json.dumps(result))))
            connection.execute('INSERT INTO MetricData VALUES (0, ?, ?, ?, 0, ?)',
                               (f't{i}', str(i), 'PERIODICAL', json.dumps(json.dumps({'default': 0.1}))))
    (home / '.experiment').write_text(json.dumps(
        {experiment_id: {'id': experiment_id, 'status': 'STOPPED', 'port': 1, 'logDir': str(home)}}))


def test_stopped_experiment_is_read_from_its_database(tmp_path, capsys):
    make_experiment(tmp_path)
    assert report.final_results('abc123', tmp_path) == RESULTS
    png = tmp_path / 'chart.png'
    assert report.main(['abc123', '--nni-home', str(tmp_path), '--png', str(png)]) == 0
    assert '| random | 1 | 80.00 ± 0.00 |' in capsys.readouterr().out
    assert png.read_bytes()[:4] == b'\x89PNG'


def test_unknown_experiment_lists_the_known(tmp_path, capsys):
    make_experiment(tmp_path)
    with pytest.raises(ConfigError, match="no NNI experiment 'zzz' .*; known: abc123"):
        report.final_results('zzz', tmp_path)
    assert report.main(['zzz', '--nni-home', str(tmp_path)]) == 2
