"""Where a trial writes: one place for every file, refused before any work where it cannot write,
and held by one trial at a time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from nni_darts_ext import trial
from nni_darts_ext.epoch_reporter import LAUNCHED_RANK, is_rank_zero
from nni_darts_ext.files import LOCK, held

from .test_bad_input import tuned_trial

# a whole trial in seconds: no search, one retraining epoch of a tiny network
QUICK = {'variant': 'random', 'train_subset': 64, 'test_subset': 32, 'batch_size': 32, 'retrain_epochs': 1,
         'retrain_width': 4, 'retrain_cells': 2}


def test_a_tilde_puts_every_file_in_the_home_directory(tmp_path, monkeypatch):
    """Lightning expanded ``~`` in the checkpoints' path and nothing else did: a resume found no checkpoint."""
    home, work = tmp_path / 'home', tmp_path / 'work'
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv('HOME', str(home))
    monkeypatch.chdir(work)
    arguments = ['--train-subset', '64', '--test-subset', '32', '--batch-size', '16', '--search-epochs', '1',
                 '--retrain-epochs', '1', '--search-width', '4', '--search-cells', '2', '--retrain-width', '4',
                 '--retrain-cells', '2', '--accelerator', 'cpu', '--output-dir', '~/run']
    assert trial.main(arguments) == 0
    assert {'metrics.json', 'arch.json', 'checkpoints', 'tensorboard'} <= {p.name for p in (home / 'run').iterdir()}
    assert (home / 'run' / 'checkpoints' / 'last.ckpt').is_file()
    assert list(work.iterdir()) == []


@pytest.fixture
def read_only(tmp_path) -> Iterator[Path]:
    """A directory this user cannot write in; the test is skipped where the user (root) writes anyway."""
    directory = tmp_path / 'read-only'
    directory.mkdir()
    directory.chmod(0o500)
    if os.access(directory, os.W_OK):
        pytest.skip('this user (root) writes in a read-only directory')
    yield directory
    directory.chmod(0o700)


WRITABLE = 'accepted: a directory this user can create and write'


@pytest.mark.parametrize('case', ['read-only', 'under-read-only'])
def test_an_output_dir_this_user_cannot_write_is_refused_before_any_work(case, read_only, monkeypatch, capsys):
    path = read_only if case == 'read-only' else read_only / 'run'
    assert tuned_trial({**QUICK, 'output_dir': str(path)}, None, monkeypatch) == 2
    created = '' if path == read_only else f' (it would be created in {read_only})'
    assert capsys.readouterr().err.strip() == \
        f'error: output_dir {path} cannot be written{created}: Permission denied; {WRITABLE}'
    assert list(read_only.iterdir()) == []


def test_an_output_dir_under_proc_is_refused_before_any_work(monkeypatch, capsys):
    """Root may write everywhere, ``os.access`` says, but not in ``/proc``."""
    assert tuned_trial({**QUICK, 'output_dir': '/proc/nni-darts-ext/run'}, None, monkeypatch) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith('error: output_dir /proc/nni-darts-ext/run cannot be written (it would be created in '
                            '/proc): ') and error.endswith(WRITABLE) and '\n' not in error, error


def test_an_output_dir_of_too_long_a_name_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    path = tmp_path / ('x' * 256) / 'run'
    assert tuned_trial({**QUICK, 'output_dir': str(path)}, None, monkeypatch) == 2
    assert capsys.readouterr().err.strip() == f'error: output_dir {path} cannot be a directory (File name too long); ' \
        'accepted: a path of short enough names, in folders you can enter'


HOLDER = ('import fcntl, sys, time\n'
          'lock = open(sys.argv[1], "a+")\n'
          'fcntl.flock(lock, fcntl.LOCK_EX)\n'
          'lock.write("4242\\n"); lock.flush()\n'
          'print("held", flush=True)\n'
          'time.sleep(600)\n')


def test_a_second_trial_on_a_directory_in_use_stops_at_once(tmp_path, monkeypatch, capsys):
    """Two trials on one output directory both finished, the second overwriting the first's result."""
    output_dir = tmp_path / 'out'
    output_dir.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(output_dir / LOCK)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        assert tuned_trial(QUICK, output_dir, monkeypatch) == 2
        errors = capsys.readouterr().err.strip().splitlines()
        assert errors == [f'error: output_dir {output_dir} is in use by another trial (process 4242); accepted: an '
                          'output_dir no running trial writes to'], errors
        assert not (output_dir / 'metrics.json').exists()
    finally:
        holder.kill()
        holder.wait()
    with held(output_dir, 'output_dir'):  # a killed holder holds nothing
        assert (output_dir / LOCK).read_text() == f'{os.getpid()}\n'
    assert tuned_trial(QUICK, output_dir, monkeypatch) == 0
    assert (output_dir / 'metrics.json').is_file()


def test_the_lock_is_held_while_the_trial_runs(tmp_path, monkeypatch):
    output_dir = tmp_path / 'out'
    seen = []
    search = trial.search

    def searching(*args, **kwargs):
        with pytest.raises(trial.ConfigError, match='is in use by another trial'):
            with held(output_dir, 'output_dir'):
                pass
        seen.append(True)
        return search(*args, **kwargs)

    monkeypatch.setattr(trial, 'search', searching)
    assert tuned_trial(QUICK, output_dir, monkeypatch) == 0
    assert seen == [True]


@pytest.mark.parametrize('variable', LAUNCHED_RANK)
def test_a_rank_a_launcher_started_is_not_rank_zero_before_the_ranks_join(variable, monkeypatch):
    """Ranks 1 to N-1 run the trial's command from its start: they must not take rank 0's lock."""
    for name in LAUNCHED_RANK:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('SLURM_PROCID', '3')  # one of several trials srun started: each is its own rank 0
    assert is_rank_zero()
    monkeypatch.setenv(variable, '0')
    assert is_rank_zero()
    monkeypatch.setenv(variable, '1')
    assert not is_rank_zero()
