"""Resuming a search killed mid-way (SIGKILL) ends where an uninterrupted search ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

FLAGS = ['--train-subset', '256', '--test-subset', '64', '--batch-size', '32', '--search-epochs', '3',
         '--retrain-epochs', '1', '--accelerator', 'cpu', '--threads', '1']
PDARTS_STAGES = "{pdarts: {stages: [[3, null, 1, 0, 0.0], [4, 5, 2, 1, 0.4]]}}"


def trial_command(variant: str, output_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, '-m', 'nni_darts_ext.trial', *FLAGS, '--variant', variant,
            '--variant-settings', PDARTS_STAGES, '--output-dir', str(output_dir), *extra]


def killed_after(command: list[str], search_epochs: int) -> None:
    """Start ``command`` and SIGKILL it as soon as it logs search epoch ``search_epochs``."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        for line in process.stderr:
            if f'epoch {search_epochs} (search)' in line:
                break
        else:
            pytest.fail('the trial ended before the epoch it was to be killed in')
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize('variant', ['darts', 'pdarts'])  # P-DARTS: killed in its second stage
def test_a_killed_search_resumes_to_the_same_architecture(variant, tmp_path):
    uninterrupted = subprocess.run(trial_command(variant, tmp_path / 'whole'), capture_output=True, text=True,
                                   timeout=600)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    killed_after(trial_command(variant, tmp_path / 'resumed'), search_epochs=2)
    assert (tmp_path / 'resumed' / 'checkpoints' / 'last.ckpt').is_file()
    assert not (tmp_path / 'resumed' / 'arch.json').exists()
    resumed = subprocess.run(trial_command(variant, tmp_path / 'resumed', '--resume', 'true'), capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resuming the search from' in resumed.stderr

    def outcome(run: str) -> tuple:
        metrics = json.loads((tmp_path / run / 'metrics.json').read_text())
        search_epochs = [(e['epoch'], e['default'], e.get('stage')) for e in metrics['epochs'] if e['phase'] == 'search']
        return json.loads((tmp_path / run / 'arch.json').read_text())['architecture'], search_epochs

    assert outcome('resumed') == outcome('whole')
    assert len(outcome('whole')[1]) == 3
