"""Several local trials at once under nnictl: each runs the parameters NNI's web UI shows for it."""

from __future__ import annotations

import json

import pytest

from nni_darts_ext import report
from nni_darts_ext.trial_parameters import OwnParameterChannel

from .conftest import QUICK
from .nnictl_helpers import rest, running_experiment, small_experiment, trial_command, wait_until_done

LATE_START_S = 8
"""How late the trials of even sequence number start: every odd one asks NNI for parameters first."""


def test_concurrent_trials_run_the_parameters_the_web_ui_shows(tmp_path):
    """Four trials of ``random`` (no search: seconds each), two at a time. Trial 1 asks before trial 0,
    so NNI 3.0's queue would hand it trial 0's seed (the web UI showing trial 1's);
    ``nni_darts_ext.trial_parameters`` gives each trial its own."""
    flags = {**QUICK, 'train_subset': 64, 'test_subset': 32, 'batch_size': 16}
    command = f'sleep $(( NNI_TRIAL_SEQ_ID % 2 ? 0 : {LATE_START_S} )) && {trial_command(flags)}'
    config = small_experiment('quickstart', tmp_path, ['random'], command, seeds=(0, 1, 2, 3), trialConcurrency=2)
    with running_experiment(config, tmp_path) as (experiment_id, port):
        trials = sorted(wait_until_done(port, 300), key=lambda trial: trial['sequenceId'])
        metrics = rest(port, 'metric-data')
    assert [trial['status'] for trial in trials] == ['SUCCEEDED'] * 4, trials
    first, second = trials[:2]
    assert second['startTime'] < first['endTime']  # the two ran at the same time

    shown = [json.loads(trial['hyperParameters'][0]) for trial in trials]
    assert sorted(record['parameters']['seed'] for record in shown) == [0, 1, 2, 3]
    for trial, record in zip(trials, shown):
        [final] = [metric for metric in metrics if metric['trialJobId'] == trial['trialJobId']
                   and metric['type'] == 'FINAL']
        result = report.decode_metric(final['data'])
        assert {'variant': result['variant'], 'seed': result['seed']} == record['parameters'], trial['sequenceId']
        assert int(final['parameterId']) == record['parameter_id']  # the tuner pairs the result with those parameters
        [written] = (tmp_path / 'nni' / experiment_id / 'environments').glob(
            f'*/trials/{trial["trialJobId"]}/metrics.json')
        ran = json.loads(written.read_text())['config']
        assert {'variant': ran['variant'], 'seed': ran['seed']} == record['parameters']


@pytest.mark.parametrize('channel, parameters', [
    ('http://localhost:8080/env/local-env/AbCdE', 'http://localhost:8080/api/v1/nni/trial-jobs/AbCdE'),
    ('http://localhost:8080/nni/env/local-env/AbCdE', 'http://localhost:8080/nni/api/v1/nni/trial-jobs/AbCdE'),
])
def test_a_local_trial_reads_its_parameters_from_the_server_of_its_channel(channel, parameters):
    """Where the manager serves the channel (``nnictl create --url_prefix`` included), it serves the REST API."""
    assert OwnParameterChannel(channel, 'AbCdE').trial_job_url == parameters


def test_a_channel_of_another_trial_is_refused():
    with pytest.raises(RuntimeError, match='not the local channel of trial AbCdE'):
        OwnParameterChannel('http://localhost:8080/env/local-env/XyZ12', 'AbCdE')
