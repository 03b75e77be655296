from __future__ import annotations

import http.server
import json
import sqlite3
import threading

import pytest

from nni_darts_ext import report
from nni_darts_ext.errors import ConfigError
from nni_darts_ext.reference_sample import PROTOCOL_SETTINGS, ReferenceSample

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
    # pooled std sqrt((0.0283**2 + 0**2) / 2) = 0.02, so (0.92 - 0.80) / 0.02 = +6.0
    assert '| darts | 2 | 92.00 ± 2.83 | – | – | 1,100 | 11.0 | – | 5.0 | – | – | 0.0 | +6.0 |' in table


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


def trials(variant, accuracies, **extra):
    return [{'default': a, 'variant': variant, 'seed': seed, **extra} for seed, a in enumerate(accuracies)]


def test_above_random_is_the_mean_difference_in_pooled_standard_deviations():
    # means differ by 0.06, both sample stds are 0.02, so the pooled std is 0.02
    rows = report.summarize(trials('random', [0.80, 0.82, 0.84]) + trials('darts', [0.86, 0.88, 0.90])
                            + trials('pcdarts', [0.78, 0.81, 0.78]))
    by_name = {r.variant: r for r in rows}
    assert by_name['darts'].above_random == pytest.approx(3.0)
    # below random: (0.79 - 0.82) / sqrt((0.0173**2 + 0.02**2) / 2) = -1.6
    assert by_name['pcdarts'].above_random == pytest.approx(-0.03 / 0.0187083, rel=1e-4)
    assert by_name['random'].above_random is None
    table = report.format_table(rows)
    assert '| +3.0 |' in table and '| -1.6 |' in table
    [random_line] = [line for line in table.splitlines() if line.startswith('| random |')]
    assert random_line.endswith('| – |')  # random is not compared with itself


def test_above_random_is_absent_without_random_and_undefined_without_spread():
    rows = report.summarize(trials('darts', [0.86, 0.88, 0.90]) + trials('pcdarts', [0.80, 0.82]))
    assert [r.above_random for r in rows] == [None, None]
    assert all(line.endswith('| – |') for line in report.format_table(rows).splitlines()[2:])
    rows = report.summarize(trials('random', [0.80, 0.80]) + trials('darts', [0.90]))
    assert [r.above_random for r in rows] == [None, None]
    assert report.format_table(rows).splitlines()[2].endswith('| n/a |')


def test_latency_is_averaged_over_the_trials_that_measured_it():
    results = (trials('darts', [0.90], latency_ms=4.0, skip_connects=3) + trials('darts', [0.92], skip_connects=4)
               + trials('darts', [0.94], latency_ms=5.5, skip_connects=4) + trials('random', [0.80]))
    darts, random = report.summarize(results)
    assert darts.latency_ms == pytest.approx(4.75)
    assert darts.skip_connects == pytest.approx(11 / 3)
    assert random.latency_ms is None
    table = report.format_table([darts, random]).splitlines()
    assert table[0] == ('| variant | seeds | test accuracy (%) | percentile | normalized entropy | parameters '
                        '| search s | search / nni-darts | retrain s | latency ms | none edges | skip-connects '
                        '| vs random (σ) |')
    assert '| 4.75 | – | 3.7 |' in table[2]
    assert '| 0.0 | – | 0.0 | – | – | 0.0 | – |' in table[3]


def test_search_seconds_are_a_ratio_of_nnis_darts_and_none_edges_a_mean_over_the_seeds_that_report_them():
    results = (trials('nni-darts', [0.90, 0.92], search_s=100.0, none_edges=1)
               + trials('pcdarts', [0.91], search_s=30.0, none_edges=2) + trials('pcdarts', [0.93], search_s=40.0)
               + trials('random', [0.80], search_s=0.2))
    rows = {row.variant: row for row in report.summarize(results)}
    assert rows['pcdarts'].search_ratio == pytest.approx(0.35) and rows['nni-darts'].search_ratio == 1
    assert rows['pcdarts'].none_edges == 2 and rows['random'].none_edges is None
    [line] = [line for line in report.format_table(list(rows.values())).splitlines() if '| pcdarts |' in line]
    assert '| 35.0 | 0.35 |' in line and '| 2.0 | 0.0 |' in line
    assert report.summarize(trials('pcdarts', [0.91], search_s=30.0))[0].search_ratio is None


def test_searches_near_uniform_are_flagged_not_converged():
    results = (trials('darts', [0.90, 0.91, 0.92], normalized_entropy=0.99)[:2]
               + trials('darts', [0.93], normalized_entropy=0.40) + trials('random', [0.80]))
    darts, random = report.summarize(results)
    assert darts.normalized_entropy == pytest.approx((0.99 + 0.99 + 0.40) / 3)
    assert darts.not_converged == 2 and random.not_converged == 0 and random.normalized_entropy is None
    line = report.format_table([darts, random]).splitlines()[2]
    assert '| 0.79 (2 of 3 not converged) |' in line
    warning = report.convergence_warning([darts, random])
    assert warning.startswith('not converged (normalized entropy above 0.95): darts (2 of 3);')
    assert report.convergence_warning([random]) is None


def test_percentile_is_the_median_over_seeds_from_the_sample_as_it_stands(tmp_path, monkeypatch):
    protocol = {name: None for name in PROTOCOL_SETTINGS}
    sample = ReferenceSample('toy', protocol, seeds=[0], draws=['a', 'b', 'c', 'd'])
    for key, accuracy in zip('abcde', (0.5, 0.6, 0.7, 0.8, 0.75)):
        sample.record(key, {}, 0, accuracy, 1.0)
    sample.save(tmp_path / 'toy.json')
    monkeypatch.setattr(report, 'SAMPLES_DIR', tmp_path)
    # e scores 0.75: above a, b, c of the 4 draws -> 75; d ties itself -> (3 + 0.5) / 4
    results = [{'default': 0.9, 'variant': 'darts', 'seed': 0, 'reference': 'toy', 'arch': 'e'},
               {'default': 0.9, 'variant': 'darts', 'seed': 1, 'reference': 'toy', 'arch': 'd'},
               {'default': 0.9, 'variant': 'darts', 'seed': 2, 'reference': 'toy', 'arch': 'unscored'},
               {'default': 0.8, 'variant': 'random', 'seed': 0, 'percentile': 12.5}]
    darts, random = report.summarize(results)
    assert darts.percentile == pytest.approx((75 + 87.5) / 2)
    assert random.percentile == 12.5  # no sample named: the trial's own figure
    assert '| 81 |' in report.format_table([darts, random]).splitlines()[2]


def test_plot_writes_a_png_when_some_variants_lack_latency(tmp_path):
    rows = report.summarize(trials('darts', [0.90, 0.92], search_s=100.0, latency_ms=4.0)
                            + trials('pcdarts+stabilized', [0.91], search_s=60.0) + trials('random', [0.80, 0.83]))
    png = tmp_path / 'chart.png'
    report.plot(rows, png, 'test')
    data = png.read_bytes()
    assert data[:4] == b'\x89PNG' and len(data) > 1000
    # and with no latency at all, the third panel says so instead of failing
    report.plot(report.summarize(trials('random', [0.80])), png, 'test')
    assert png.read_bytes()[:4] == b'\x89PNG'


def test_every_variant_of_a_large_grid_has_its_own_colour_and_marker():
    variants = [f'variant{index}' for index in range(40)]
    styles = report.variant_styles(variants)
    assert len({(s['color'], s['marker']) for s in styles.values()}) == 40


@pytest.mark.parametrize('png, message', [
    ('charts', '--png {tmp}/charts is a directory; accepted: a file name ending in .png'),
    ('chart.txt', '--png {tmp}/chart.txt is not a .png file name; accepted: a file name ending in .png'),
    ('/proc/nni-darts-ext/chart.png', "--png's folder /proc/nni-darts-ext cannot be written (it would be created in "
                                      '/proc): '),
])
def test_a_png_that_cannot_be_written_is_refused_before_any_work(png, message, tmp_path, capsys):
    """``--png DIR`` printed ``chart: DIR`` and wrote DIR.png; a .txt or unwritable path was a traceback."""
    make_experiment(tmp_path)
    (tmp_path / 'charts').mkdir()
    png = png if png.startswith('/') else str(tmp_path / png)
    assert report.main(['abc123', '--nni-home', str(tmp_path), '--png', png]) == 2
    output = capsys.readouterr()
    errors = output.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith('error: ' + message.format(tmp=tmp_path)), errors
    assert output.out == '' and not list(tmp_path.glob('*.png')) and not list((tmp_path / 'charts').iterdir())


def test_a_png_that_fails_while_written_is_one_line_after_the_table(tmp_path, monkeypatch, capsys):
    def full(rows, path, title):
        path.write_bytes(b'\x89PNG half')
        raise OSError(28, 'No space left on device')

    make_experiment(tmp_path)
    png = tmp_path / 'chart.png'
    png.write_bytes(b'\x89PNG the previous chart')
    monkeypatch.setattr(report, 'plot', full)
    assert report.main(['abc123', '--nni-home', str(tmp_path), '--png', str(png)]) == 1
    output = capsys.readouterr()
    assert '| random | 1 | 80.00 ± 0.00 |' in output.out
    assert output.err.strip() == f'error: --png {png} could not be written (No space left on device); the table ' \
        'above is complete'
    assert png.read_bytes() == b'\x89PNG the previous chart'
    assert [path.name for path in tmp_path.glob('*.png')] == ['chart.png']  # no half-written chart left


@pytest.mark.parametrize('registry', [b'{"abc123": {"id": "abc1', b'', b'["abc123"]', bytes(range(128, 256))],
                         ids=['truncated', 'empty', 'list', 'binary'])
def test_a_damaged_experiment_registry_is_one_line_naming_it(registry, tmp_path, capsys):
    make_experiment(tmp_path)
    (tmp_path / '.experiment').write_bytes(registry)
    assert report.main(['abc123', '--nni-home', str(tmp_path), '--png', str(tmp_path / 'chart.png')]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {tmp_path / '.experiment'}: not NNI's experiment "
                                                     'registry ('), errors
    assert errors[0].endswith('it must be a JSON mapping of experiment ids')


@pytest.mark.parametrize('database', [b'not a database' * 100, b''], ids=['garbage', 'empty'])
def test_an_experiment_database_that_is_not_sqlite_is_one_line_naming_it(database, tmp_path, capsys):
    make_experiment(tmp_path)
    path = tmp_path / 'abc123' / 'db' / 'nni.sqlite'
    path.write_bytes(database)
    assert report.main(['abc123', '--nni-home', str(tmp_path), '--png', str(tmp_path / 'chart.png')]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f'error: {path}: not an NNI experiment database ('), errors
    assert errors[0].endswith('it must be the SQLite file NNI wrote, with its MetricData table')


@pytest.mark.parametrize('answer', [b'<html>a web page</html>', b'{"metrics": []}', b'[1, 2]'],
                         ids=['not-json', 'a-mapping', 'a-list-of-numbers'])
def test_a_running_experiment_whose_port_answers_something_else_is_read_from_its_database(answer, tmp_path):
    class Other(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the handler's name)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    make_experiment(tmp_path)
    with http.server.HTTPServer(('127.0.0.1', 0), Other) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        registry = json.loads((tmp_path / '.experiment').read_text())
        registry['abc123'].update(status='RUNNING', port=server.server_address[1])
        (tmp_path / '.experiment').write_text(json.dumps(registry))
        try:
            assert report.final_results('abc123', tmp_path) == RESULTS
        finally:
            server.shutdown()
