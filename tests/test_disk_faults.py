"""A disk that fills up or turns read-only, where a trial writes and where Lightning would stage:
one line that says what is kept and how to resume, never a traceback; each case on a small tmpfs
or a read-only bind mount of its own, in a mount namespace (skipped where mounting is not allowed)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FLAGS = ['--dataset', 'digits', '--train-subset', '128', '--test-subset', '64', '--batch-size', '32',
         '--search-epochs', '2', '--retrain-epochs', '1', '--accelerator', 'cpu', '--threads', '1']
TRIAL = [sys.executable, '-m', 'nni_darts_ext.trial', *FLAGS]


def can_mount() -> bool:
    if shutil.which('unshare') is None:
        return False
    probe = 'mount -t tmpfs -o size=4k tmpfs /mnt'
    return subprocess.run(['unshare', '-m', 'sh', '-c', probe], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not can_mount(), reason='needs a mount namespace (unshare -m, as root) for a small disk')


def in_namespace(script: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """``script`` (sh) in a mount namespace of its own: its mounts vanish with it."""
    return subprocess.run(['unshare', '-m', 'sh', '-c', script], capture_output=True, text=True, timeout=timeout_s)


def trial(output_dir: Path, *extra: str) -> str:
    return shlex.join([*TRIAL, '--output-dir', str(output_dir), *extra])


def errors_of(stderr: str) -> list[str]:
    assert 'Traceback' not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith('error:')]


def test_a_disk_full_at_the_first_checkpoint_is_one_line_and_the_trial_resumes_once_there_is_room(tmp_path):
    disk, output_dir = tmp_path / 'disk', tmp_path / 'disk' / 'out'
    disk.mkdir()
    result = in_namespace(f'mount -t tmpfs -o size=64k tmpfs {disk} && {trial(output_dir)}; echo "exit $?"; '
                         f'mount -o remount,size=64m {disk} && {trial(output_dir, "--resume", "true")}; echo "exit $?"; '
                         f'cat {output_dir}/metrics.json')
    first, second = result.stdout.split('exit ')[1:3]
    assert first.startswith('1'), result.stderr[-3000:]
    assert errors_of(result.stderr) == [
        f'error: {output_dir}/checkpoints/last.ckpt: No space left on device; what the trial wrote before is kept: make '
        f'room (or make {output_dir} writable) and run it again with --resume true and --output-dir {output_dir} to '
        'continue from its last checkpoint']
    assert second.startswith('0'), result.stderr[-3000:]
    assert [epoch['phase'] for epoch in json.loads(second.split('\n', 1)[1])['epochs']] == ['search', 'search', 'retrain']


def test_a_read_only_output_dir_is_refused_before_any_work(tmp_path):
    output_dir = tmp_path / 'out'
    output_dir.mkdir()
    result = in_namespace(f'mount --bind -o ro {output_dir} {output_dir} && {trial(output_dir)}')
    assert result.returncode == 2
    [error] = errors_of(result.stderr)
    assert error.startswith(f'error: output_dir {output_dir} cannot be written'), error


def test_a_full_tmpdir_does_not_fail_a_trial_whose_output_dir_has_room(tmp_path):
    staging, output_dir = tmp_path / 'tmp', tmp_path / 'out'
    staging.mkdir()
    # room for Python's probe of a temporary folder, not for a checkpoint
    result = in_namespace(f'mount -t tmpfs -o size=64k tmpfs {staging} && TMPDIR={staging} {trial(output_dir)} '
                          f'&& echo "left: $(ls -A {staging})"')
    assert result.returncode == 0, result.stderr[-3000:]
    assert errors_of(result.stderr) == []
    assert result.stdout.splitlines()[-1] == 'left: '  # nothing staged, nothing left behind
    assert (output_dir / 'checkpoints' / 'last.ckpt').is_file() and (output_dir / 'metrics.json').is_file()
