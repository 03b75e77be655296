"""A trial killed (SIGKILL) mid-search and again mid-retraining, each time resumed, ends where an
uninterrupted trial ends; in one process or two."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

FLAGS = ['--train-subset', '128', '--test-subset', '64', '--batch-size', '32', '--search-epochs', '3',
         '--retrain-epochs', '1', '--accelerator', 'cpu', '--threads', '1']
PDARTS_STAGES = "{pdarts: {stages: [[3, null, 1, 0, 0.0], [4, 5, 2, 1, 0.4]]}}"


def trial_command(variant: str, output_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, '-m', 'nni_darts_ext.trial', *FLAGS, '--variant', variant,
            '--variant-settings', PDARTS_STAGES, '--output-dir', str(output_dir), *extra]


def killed_after(command: list[str], line: str) -> None:
    """Start ``command`` and SIGKILL it, with the processes it started, as soon as it logs ``line``
    (e.g. ``epoch 2 (search)``)."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               start_new_session=True)
    try:
        for logged in process.stderr:
            if line in logged:
                break
        else:
            pytest.fail(f'the trial ended before logging {line!r}, where it was to be killed')
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


TIMINGS = {'search_s', 'retrain_s', 'latency_ms', 'stage_s'}
"""The final result's keys that are measured times, which no two runs share."""


@pytest.mark.parametrize('variant', ['darts', 'pdarts'])  # P-DARTS: killed in its second stage
def test_a_trial_killed_in_its_search_and_its_retraining_resumes_to_the_same_result(variant, tmp_path):
    uninterrupted = subprocess.run(trial_command(variant, tmp_path / 'whole'), capture_output=True, text=True,
                                   timeout=600)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    resumed_dir = tmp_path / 'resumed'
    killed_after(trial_command(variant, resumed_dir), 'epoch 2 (search)')
    assert (resumed_dir / 'checkpoints' / 'last.ckpt').is_file()
    assert not (resumed_dir / 'arch.json').exists()
    # resumed, then killed again in the retraining, after the search's last checkpoint
    killed_after(trial_command(variant, resumed_dir, '--resume', 'true'), 'epoch 4 (retrain)')
    assert not (resumed_dir / 'metrics.json').exists()
    resumed = subprocess.run(trial_command(variant, resumed_dir, '--resume', 'true'), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resuming the search from' in resumed.stderr
    assert not re.search(r'epoch \d+ \(search\)', resumed.stderr)  # the finished search does not run again

    def outcome(run: str) -> tuple:
        metrics = json.loads((tmp_path / run / 'metrics.json').read_text())
        epochs = [(e['epoch'], e['phase'], e['default'], e.get('stage')) for e in metrics['epochs']]
        final = {key: value for key, value in metrics['final'].items() if key not in TIMINGS}
        return json.loads((tmp_path / run / 'arch.json').read_text())['architecture'], epochs, final

    assert outcome('resumed') == outcome('whole')
    assert [phase for _, phase, _, _ in outcome('whole')[1]] == ['search'] * 3 + ['retrain']


def test_a_latency_aware_search_resumes_on_its_own_measurements_when_the_cache_is_gone(tmp_path):
    cache = tmp_path / 'cache'
    command = ['--variant-settings', f'{{ladarts: {{latency_cache: {cache}, latency_samples: 8}}}}']
    whole = [*trial_command('ladarts', tmp_path / 'whole'), *command]
    assert subprocess.run(whole, capture_output=True, text=True, timeout=600).returncode == 0

    resumed_dir = tmp_path / 'resumed'
    killed_after([*trial_command('ladarts', resumed_dir), *command], 'epoch 2 (search)')
    for measurements in cache.iterdir():
        measurements.unlink()  # the cache the interrupted search read
    resumed = subprocess.run([*trial_command('ladarts', resumed_dir, '--resume', 'true'), *command],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'measuring' not in resumed.stderr and not any(cache.iterdir())

    def outcome(run: str) -> tuple:
        metrics = json.loads((tmp_path / run / 'metrics.json').read_text())
        final = {key: value for key, value in metrics['final'].items()
                 if key not in TIMINGS | {'measured_latency_ms'}}
        return [(e['epoch'], e['default'], e.get('expected_latency_ms')) for e in metrics['epochs']], final

    assert outcome('resumed') == outcome('whole')
    assert outcome('whole')[1]['predicted_latency_ms'] > 0


def test_a_search_in_two_processes_resumes_to_the_same_epoch_records(tmp_path):
    """Each process's BatchNorm statistics follow its own batches; a checkpoint keeps process zero's.
    The resumed epoch validates as the uninterrupted one did (the processes share their statistics)."""
    two_processes = ['--devices', '2', '--search-epochs', '2', '--retrain-epochs', '0']
    whole = subprocess.run(trial_command('darts', tmp_path / 'whole', *two_processes), capture_output=True,
                           text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed_after(trial_command('darts', tmp_path / 'resumed', *two_processes), 'epoch 2 (search)')
    resumed = subprocess.run(trial_command('darts', tmp_path / 'resumed', *two_processes, '--resume', 'true'),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resuming the search from' in resumed.stderr

    def records(run: str) -> list[dict]:
        return json.loads((tmp_path / run / 'metrics.json').read_text())['epochs']

    assert records('resumed') == records('whole')
    assert len(records('whole')) == 2
