"""End to end: ``nnictl create`` runs two trials of the real trial command to SUCCEEDED."""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from nni_darts_ext import VARIANTS, report

NNICTL = str(Path(sys.executable).parent / 'nnictl')
REPOSITORY = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def rest(port: int, path: str):
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/v1/nni/{path}', timeout=10) as response:
        return json.load(response)


@pytest.fixture
def experiment(tmp_path):
    """A two-trial experiment (darts and random, seed 0) on a free port, stopped afterwards."""
    port = free_port()
    config = {
        'experimentName': 'nni-darts-ext end-to-end test',
        'searchSpace': {'variant': {'_type': 'choice', '_value': ['darts', 'random']},
                        'seed': {'_type': 'choice', '_value': [0]}},
        'trialCommand': f'{sys.executable} -m nni_darts_ext.trial --train-subset 256 --test-subset 128 '
                        '--batch-size 32 --search-epochs 2 --retrain-epochs 1 --accelerator cpu',
        'trialCodeDirectory': str(tmp_path),
        'trialConcurrency': 1,
        'maxTrialNumber': 2,  # without it, NNI never reports DONE after GridSearch runs out
        'tuner': {'name': 'GridSearch'},
        'trainingService': {'platform': 'local'},
        'experimentWorkingDirectory': str(tmp_path / 'nni'),
    }
    path = tmp_path / 'config.yml'
    path.write_text(yaml.safe_dump(config))
    created = subprocess.run([NNICTL, 'create', '--config', str(path), '--port', str(port)],
                             capture_output=True, text=True, timeout=120)
    output = re.sub(r'\x1b\[[0-9;]*m', '', created.stdout + created.stderr)
    match = re.search(r'Experiment ID: (\w+)', output)
    assert created.returncode == 0 and match, output
    experiment_id = match[1]
    try:
        yield experiment_id, port
    finally:
        subprocess.run([NNICTL, 'stop', experiment_id], capture_output=True, timeout=120)


def test_two_trials_succeed_with_per_epoch_and_final_results(experiment, capsys, tmp_path):
    experiment_id, port = experiment
    deadline = time.monotonic() + 600
    while (status := rest(port, 'check-status'))['status'] != 'DONE':
        assert status['status'] != 'ERROR', status
        assert time.monotonic() < deadline, f'experiment still {status} after 10 minutes'
        time.sleep(3)

    trials = rest(port, 'trial-jobs')
    assert len(trials) == 2 and {t['status'] for t in trials} == {'SUCCEEDED'}, trials
    metrics = rest(port, 'metric-data')
    for trial in trials:
        kinds = {m['type'] for m in metrics if m['trialJobId'] == trial['trialJobId']}
        assert kinds == {'PERIODICAL', 'FINAL'}
        final = [report._decode(m['data']) for m in metrics
                 if m['trialJobId'] == trial['trialJobId'] and m['type'] == 'FINAL']
        assert len(final) == 1
        # one trial at a time: the web UI's parameters are the ones the trial ran
        assert json.loads(trial['hyperParameters'][0])['parameters'] == {
            'variant': final[0]['variant'], 'seed': final[0]['seed']}

    # the report, from the REST API while the experiment's server runs
    assert report.main([experiment_id, '--png', str(tmp_path / 'report' / 'chart.png')]) == 0
    table = capsys.readouterr().out
    assert '| darts | 1 |' in table and '| random | 1 |' in table


def test_quickstart_offers_every_registered_variant():
    config = yaml.safe_load((REPOSITORY / 'experiments' / 'quickstart.yml').read_text())
    assert set(config['searchSpace']['variant']['_value']) == set(VARIANTS)
    grid = len(config['searchSpace']['variant']['_value']) * len(config['searchSpace']['seed']['_value'])
    assert config['maxTrialNumber'] == grid  # so the experiment ends DONE
    assert config['trainingService']['platform'] == 'local'


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_every_quickstart_trial_builds_its_supernet(variant):
    """The quick start's command line and per-variant settings give each variant a valid setup."""
    from nni.nas.oneshot.pytorch.strategy import OneShotStrategy
    from nni_darts_ext import trial
    from nni_darts_ext.config import command_line, merge_parameters, parse_options, split_parameters
    config = yaml.safe_load((REPOSITORY / 'experiments' / 'quickstart.yml').read_text())
    command = shlex.split(config['trialCommand'])
    assert command[:3] == ['python3', '-m', 'nni_darts_ext.trial']
    flags = vars(command_line().parse_args(command[3:]))
    options = parse_options(flags.pop('option'))
    settings = flags.pop('variant_settings')
    trial_config, variant_options = split_parameters(merge_parameters(flags, options, settings,
                                                                      {'variant': variant, 'seed': 0}))
    strategy, data, space, search_size, _ = trial.prepare(trial_config, variant_options)
    if isinstance(strategy, OneShotStrategy):
        strategy.mutate_model(space.search_space(search_size))


@pytest.mark.parametrize('name', ['quickstart', 'cifar10', 'remote'])
def test_experiment_configs_are_valid_nni_configs(name, tmp_path):
    from nni.experiment.config import ExperimentConfig
    config = yaml.safe_load((REPOSITORY / 'experiments' / f'{name}.yml').read_text())
    for machine in config['trainingService'].get('machineList', []):
        key = tmp_path / 'id_test'  # NNI checks that the key file exists
        key.write_text('not a real key')
        machine['sshKeyFile'] = str(key)
    config['trialCodeDirectory'] = str(REPOSITORY / 'experiments')
    ExperimentConfig(**config).validate()
