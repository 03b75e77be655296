"""NNI's remote training service: ``experiments/remote.yml`` runs a trial over SSH, on a throwaway sshd on localhost."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nni_darts_ext import report

from .conftest import QUICK, require_system_tool
from .nnictl_helpers import (REPOSITORY, free_port, rest, running_experiment, small_experiment, trial_command,
                             wait_until_done)

SSHD = '/usr/sbin/sshd'  # sshd refuses to start unless named by absolute path
PRIVILEGE_SEPARATION = Path('/run/sshd')  # Debian's sshd running as root will not start without it


@dataclass
class SshServer:
    """Where the test's sshd listens, and who may log in with which key."""
    port: int
    user: str
    key: Path


def _sshd_config(directory: Path, port: int) -> Path:
    """An sshd config of its own, so the machine's /etc/ssh is neither read nor changed."""
    host_key, client_key = directory / 'host_key', directory / 'client_key'
    for key in host_key, client_key:
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(key)], check=True)
    lines = [
        f'Port {port}', 'ListenAddress 127.0.0.1', f'HostKey {host_key}', f'PidFile {directory / "sshd.pid"}',
        f'AuthorizedKeysFile {client_key}.pub',
        'UsePAM no',  # PAM needs the system's service files; keys are all this test uses
        'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
        'StrictModes no',  # the keys lie under pytest's temporary directory, not in ~/.ssh
        'Subsystem sftp internal-sftp',  # NNI uploads the trial code and its launcher config by SFTP
        # NNI's worker runs `python -m pip install nni --upgrade` on the remote machine: offline, it keeps the
        # virtual environment's nni as it is (the same version as the NNI manager's) and needs no network
        'SetEnv PIP_NO_INDEX=1',
    ]
    path = directory / 'sshd_config'
    path.write_text('\n'.join(lines) + '\n')
    return path


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, f'sshd exited with {process.returncode}: {log.read_text()}'
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f'sshd does not listen on {port}: {log.read_text()}'
            time.sleep(0.2)


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshServer]:
    """Debian's OpenSSH server on 127.0.0.1 and a free port, letting the current user in with a throwaway key."""
    require_system_tool(Path(SSHD).exists(), SSHD, 'openssh-server')
    directory = tmp_path / 'sshd'
    directory.mkdir()
    port = free_port()
    config = _sshd_config(directory, port)
    made_privilege_separation = os.geteuid() == 0 and not PRIVILEGE_SEPARATION.exists()
    if made_privilege_separation:
        PRIVILEGE_SEPARATION.mkdir(mode=0o755)
    log = directory / 'sshd.log'
    with log.open('w') as output:
        process = subprocess.Popen([SSHD, '-D', '-e', '-f', str(config)], stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log)
        yield SshServer(port, getpass.getuser(), directory / 'client_key')
    finally:
        process.terminate()
        process.wait(timeout=30)
        for key in directory.glob('*_key*'):
            key.unlink()
        if made_privilege_separation:
            PRIVILEGE_SEPARATION.rmdir()


def test_a_trial_runs_on_the_remote_machine_to_success(ssh_server: SshServer, tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    # experiments/ is what remote.yml uploads (its `.`); NNI's upload fails on an empty directory
    config = small_experiment('remote', tmp_path, ['darts'], trial_command(QUICK), trialGpuNumber=0,
                              nniManagerIp='127.0.0.1', trialCodeDirectory=str(REPOSITORY / 'experiments'))
    service = config['trainingService']
    service['machineList'] = [{
        **service['machineList'][0],
        'host': '127.0.0.1', 'port': ssh_server.port, 'user': ssh_server.user, 'sshKeyFile': str(ssh_server.key),
        'pythonPath': str(Path(sys.executable).parent),
    }]
    with running_experiment(config, tmp_path) as (experiment_id, port):
        # NNI's trial keeper keeps the remote side in the SSH user's home, whatever the config says
        remote_side = Path.home() / 'nni-experiments' / experiment_id
        request.addfinalizer(lambda: shutil.rmtree(remote_side, ignore_errors=True))
        trials = wait_until_done(port, 600)
        assert [t['status'] for t in trials] == ['SUCCEEDED'], trials
        finals = [report.decode_metric(m['data']) for m in rest(port, 'metric-data') if m['type'] == 'FINAL']
        assert [final['variant'] for final in finals] == ['darts']
    # the trial ran there: its outputs lie on the remote side
    assert list(remote_side.glob(f'environments/*/trials/{trials[0]["trialJobId"]}/arch.json'))
