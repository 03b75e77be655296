"""Driving ``nnictl`` from tests: the repository's experiment configs cut to test size, run on a free port."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

NNICTL = str(Path(sys.executable).parent / 'nnictl')
REPOSITORY = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def rest(port: int, path: str) -> Any:
    """GET ``/api/v1/nni/<path>`` from the NNI manager on ``port``."""
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/v1/nni/{path}', timeout=10) as response:
        return json.load(response)


def trial_command(flags: Mapping[str, Any]) -> str:
    """The trial command line with ``flags`` (``QUICK``'s keys: ``search_epochs``, ...) as options.

    The interpreter is named by absolute path: a remote machine's shell may put another Python first on PATH.
    """
    return ' '.join([sys.executable, '-m', 'nni_darts_ext.trial',
                     *(f'--{key.replace("_", "-")} {value}' for key, value in flags.items())])


def small_experiment(name: str, directory: Path, variants: list[str], command: str, seeds: tuple[int, ...] = (0,),
                     **overrides: Any) -> dict[str, Any]:
    """``experiments/<name>.yml`` with one trial of ``command`` per variant and seed.

    Parameters
    ----------
    name
        The config's file name without ``.yml``.
    directory
        Where the trial code directory (empty) and NNI's experiment directory go.
    variants
        The grid of the search space, with ``seeds``: one trial each.
    command
        The trial command (see `trial_command`).
    seeds
        The seeds of the grid.
    overrides
        Top-level keys that replace the config's (``trialCodeDirectory``, ``nniManagerIp``, ...).
    """
    config = yaml.safe_load((REPOSITORY / 'experiments' / f'{name}.yml').read_text())
    code = directory / 'code'  # the local trials' working directory
    code.mkdir()
    config.update({
        'searchSpace': {'variant': {'_type': 'choice', '_value': variants},
                        'seed': {'_type': 'choice', '_value': list(seeds)}},
        'trialCommand': command,
        'trialCodeDirectory': str(code),
        'maxTrialNumber': len(variants) * len(seeds),  # without it, NNI never reports DONE after GridSearch runs out
        'experimentWorkingDirectory': str(directory / 'nni'),
    }, **overrides)
    return config


@contextmanager
def running_experiment(config: dict[str, Any], directory: Path) -> Iterator[tuple[str, int]]:
    """``nnictl create`` with ``config`` on a free port; yields the experiment id and port, then stops it."""
    port = free_port()
    path = directory / 'config.yml'
    path.write_text(yaml.safe_dump(config))
    # the manager runs the web UI's TensorBoard as `tensorboard`, found on its PATH: this environment's
    environment = {**os.environ, 'PATH': os.pathsep.join([str(Path(sys.executable).parent), os.environ.get('PATH', '')])}
    created = subprocess.run([NNICTL, 'create', '--config', str(path), '--port', str(port)],
                             capture_output=True, text=True, timeout=120, env=environment)
    output = re.sub(r'\x1b\[[0-9;]*m', '', created.stdout + created.stderr)
    match = re.search(r'Experiment ID: (\w+)', output)
    assert created.returncode == 0 and match, output
    experiment_id = match[1]
    try:
        yield experiment_id, port
    finally:
        subprocess.run([NNICTL, 'stop', experiment_id], capture_output=True, timeout=120)


def wait_until_done(port: int, timeout_s: float) -> list[dict[str, Any]]:
    """Poll the experiment until NNI says ``DONE`` (its last trial ended); returns its trial jobs.

    ``NO_MORE_TRIAL`` is not enough: it comes while the last trial still runs.
    """
    deadline = time.monotonic() + timeout_s
    while (status := rest(port, 'check-status'))['status'] != 'DONE':
        assert status['status'] != 'ERROR', status
        assert time.monotonic() < deadline, f'experiment still {status} after {timeout_s} s'
        time.sleep(3)
    return rest(port, 'trial-jobs')
