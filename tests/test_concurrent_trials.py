"""Several local trials at once under nnictl: each runs the parameters NNI's web UI shows for it."""

from __future__ import annotations

import json

from nni_darts_ext import report

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
