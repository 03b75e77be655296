"""A trial stopped by SIGTERM (``nnictl stop``) exits non-zero with one line saying how to resume it,
never 0 without a result (NNI would mark it SUCCEEDED)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, TensorDataset

from nni_darts_ext import trial
from nni_darts_ext.training import ClassifierModule, make_trainer

from .test_bad_input import tuned_trial

FLAGS = ['--dataset', 'digits', '--train-subset', '128', '--test-subset', '64', '--batch-size', '32',
         '--search-epochs', '3', '--accelerator', 'cpu', '--threads', '1']
STOPPED = 'error: the trial was stopped (SIGTERM) before its result; run it again with --resume true and --output-dir '


def stopped_when(command: list[str], ready: Callable[[list[str]], bool], timeout_s: float = 300) -> tuple[int, str]:
    """Run ``command``, send it SIGTERM once ``ready`` holds for its stderr lines so far; its exit status
    and stderr."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not ready(lines):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f'the trial ended or ran out of time before it was to be stopped: {"".join(lines)[-3000:]}')
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout_s)
    finally:
        process.kill()
    reader.join(timeout_s)
    return process.returncode, ''.join(lines)


def one_stop_line(stderr: str, output_dir: Path) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith('error:')]
    assert errors == [f'{STOPPED}{output_dir} to continue from its last checkpoint'], stderr[-3000:]
    assert 'Traceback' not in stderr


@pytest.mark.parametrize('phase', ['search', 'retrain'])
def test_a_trial_stopped_by_sigterm_fails_and_resumes(phase, tmp_path):
    output_dir = tmp_path / 'out'
    command = [sys.executable, '-m', 'nni_darts_ext.trial', *FLAGS, '--output-dir', str(output_dir)]
    if phase == 'search':  # once the first epoch's checkpoint is there
        status, stderr = stopped_when([*command, '--retrain-epochs', '1'],
                                      lambda lines: (output_dir / 'checkpoints' / 'last.ckpt').is_file())
    else:  # in the retraining's second epoch
        status, stderr = stopped_when([*command, '--retrain-epochs', '3'],
                                      lambda lines: any('epoch 4 (retrain)' in line for line in lines))
    assert status == 143, stderr[-3000:]
    one_stop_line(stderr, output_dir)
    assert not (output_dir / 'metrics.json').exists()
    assert (output_dir / 'checkpoints' / 'last.ckpt').is_file()
    if phase == 'search':  # as the message says
        resumed = subprocess.run([*command, '--retrain-epochs', '1', '--resume', 'true'], capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert 'resuming the search from' in resumed.stderr and (output_dir / 'metrics.json').is_file()


@pytest.fixture
def sigterm_ignored():
    """SIGTERM ignored unless something handles it, so that a test sending it to itself does not end pytest."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_trial_stopped_between_fits_fails_at_once(sigterm_ignored, tmp_path, monkeypatch, capsys):
    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler runs here
        raise AssertionError('SIGTERM did not stop the trial')

    monkeypatch.setattr(trial, 'search', terminated)
    assert tuned_trial({'train_subset': 128}, tmp_path / 'out', monkeypatch) == 143
    one_stop_line(capsys.readouterr().err, tmp_path / 'out')
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # the trial's handler lasts as long as the trial


def test_a_fit_that_received_sigterm_after_its_last_batch_does_not_end_as_if_complete(sigterm_ignored):
    """Lightning's loops look at the signal after every batch and epoch, but not in ``on_train_end``."""
    class TerminatedAtTheEnd(pl.Callback):
        def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            os.kill(os.getpid(), signal.SIGTERM)

    module = ClassifierModule()
    module.set_model(torch.nn.Linear(4, 3))
    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randint(0, 3, (8,))), batch_size=4)
    with pytest.raises(SIGTERMException):
        make_trainer(1, 'cpu', callbacks=[TerminatedAtTheEnd()]).fit(module, loader, loader)
