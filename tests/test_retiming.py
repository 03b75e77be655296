"""An experiment's networks timed again together: each rebuilt exactly as its trial deployed it."""

from __future__ import annotations

import json

import pytest

from nni_darts_ext import report, trial
from nni_darts_ext.errors import ConfigError
from nni_darts_ext.retiming import deployed_trials, retimed_latencies

from .conftest import QUICK
from .test_report import make_experiment


def trial_flags(parameters: dict) -> list[str]:
    return [f"--{name.replace('_', '-')}={value}" for name, value in parameters.items()]


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    """Two finished trials (darts and random, seed 0) in the folders NNI's local training service gives them."""
    home = tmp_path_factory.mktemp('nni-home')
    trials = home / 'exp1' / 'environments' / 'local-env' / 'trials'
    for trial_id, variant in (('AAAAA', 'darts'), ('BBBBB', 'random')):
        flags = trial_flags({**QUICK, 'variant': variant, 'seed': 0, 'retrain_width': 4, 'retrain_cells': 3})
        assert trial.main([*flags, '--output-dir', str(trials / trial_id)]) == 0
    make_experiment(home, 'exp1')  # the database of made-up results: darts at seeds 0 and 1, random at 0
    return home


def test_each_trials_network_is_rebuilt_as_the_trial_deployed_it(experiment):
    rebuilt = deployed_trials(experiment / 'exp1')
    assert [(t.trial_id, t.variant, t.seed, t.input_shape) for t in rebuilt] == [
        ('AAAAA', 'darts', 0, (1, 8, 8)), ('BBBBB', 'random', 0, (1, 8, 8))]
    for each in rebuilt:
        final = json.loads((experiment / 'exp1' / 'environments' / 'local-env' / 'trials' / each.trial_id
                            / 'metrics.json').read_text())['final']
        assert sum(p.numel() for p in each.network.parameters()) == final['params']
    timed = retimed_latencies(experiment / 'exp1')
    assert set(timed) == {('darts', 0), ('random', 0)} and all(ms > 0 for ms in timed.values())


def test_the_report_retimes_on_request_and_says_which_latencies_it_shows(experiment, tmp_path, capsys):
    arguments = ['exp1', '--nni-home', str(experiment), '--png', str(tmp_path / 'chart.png')]
    assert report.main(arguments) == 0
    assert report.LATENCY_AS_REPORTED in capsys.readouterr().out
    assert report.main([*arguments, '--retime']) == 0
    out = capsys.readouterr().out
    assert report.LATENCY_RETIMED in out and report.LATENCY_AS_REPORTED not in out
    header, darts = (next(line.split('|') for line in out.splitlines() if line.startswith(start))
                     for start in ('| variant |', '| darts |'))
    column = [cell.strip() for cell in header].index('latency ms')
    assert float(darts[column]) > 0  # seed 0's retimed figure (seed 1 has no trial folder)


def test_the_report_says_how_its_latencies_were_measured():
    results = [{'variant': 'darts', 'seed': 0, 'latency_ms': 9.0}, {'variant': 'random', 'seed': 1, 'latency_ms': 5.0}]
    assert report.with_latencies(results, {('darts', 0): 2.5}) == [
        {'variant': 'darts', 'seed': 0, 'latency_ms': 2.5}, {'variant': 'random', 'seed': 1, 'latency_ms': None}]
    assert 'shared the cores' in report.LATENCY_AS_REPORTED and 'same interleaved rounds' in report.LATENCY_RETIMED


def test_a_folder_without_finished_trials_is_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match='no finished trial under .*only the local training service keeps'):
        deployed_trials(tmp_path)
    broken = tmp_path / 'environments' / 'local-env' / 'trials' / 'CCCCC'
    broken.mkdir(parents=True)
    (broken / 'metrics.json').write_text('{"config": {}}')
    with pytest.raises(ConfigError, match="not a finished trial's folder .*metrics.json \\(config, final\\)"):
        deployed_trials(tmp_path)
