"""The quick start's trials one at a time on two threads, against two at a time on one thread each.

``python benchmarks/concurrent_trials.py`` runs a few trials of ``experiments/quickstart.yml``
(its trial command and settings; by default ``darts`` x seeds 0 to 3) as one nnictl experiment
per setting, ``trialConcurrency: 1`` with ``--threads 2``, then ``trialConcurrency: 2`` with
``--threads 1``, each to DONE and stopped, and writes every experiment's wall time, each trial's
seconds and whether each trial ran the parameters the web UI shows to
``benchmarks/results/concurrent_trials.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import torch
import yaml

from every_variant import create, nni_status  # benchmarks/ is the script's first import path
from machine import cpu_name
from nni_darts_ext import report

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ['1:2', '2:1']
"""``trialConcurrency:threads`` per experiment: the two cores one trial at a time, or one each."""


def experiment_config(variants: list[str], seeds: list[int], concurrency: int, threads: int,
                      trial_flags: str, directory: Path) -> dict[str, Any]:
    """The quick start cut to ``variants`` x ``seeds``, ``concurrency`` trials at a time on ``threads``
    threads each (``trial_flags`` appended to its command: later flags win), NNI's files in ``directory``."""
    config = yaml.safe_load((ROOT / 'experiments' / 'quickstart.yml').read_text())
    command = config['trialCommand'].removeprefix('python3 ')
    config.update({
        'searchSpace': {'variant': {'_type': 'choice', '_value': variants},
                        'seed': {'_type': 'choice', '_value': seeds}},
        'trialCommand': f'{sys.executable} {command} --threads {threads} {trial_flags}'.strip(),
        'trialCodeDirectory': str(ROOT),
        'trialConcurrency': concurrency,
        'maxTrialNumber': len(variants) * len(seeds),
        'experimentWorkingDirectory': str(directory),
    })
    return config


def rest(port: int, path: str) -> Any:
    """GET ``/api/v1/nni/<path>`` from the NNI manager on ``port``."""
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/v1/nni/{path}', timeout=10) as response:
        return json.load(response)


def run_experiment(config: dict[str, Any], port: int, timeout_min: float, poll_s: float) -> dict[str, Any]:
    """Create the experiment, wait until it ends, stop it; its wall minutes and each trial's seconds."""
    path = Path(config['experimentWorkingDirectory']) / 'config.yml'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    started = time.monotonic()
    experiment_id = create(path, port)
    try:
        while (status := nni_status(port)) not in ('DONE', 'ERROR', 'STOPPED'):
            if time.monotonic() - started > 60 * timeout_min:
                sys.exit(f'experiment {experiment_id} still {status} after {timeout_min} minutes')
            time.sleep(poll_s)
        minutes = (time.monotonic() - started) / 60
        trials, metrics = rest(port, 'trial-jobs'), rest(port, 'metric-data')
    finally:
        subprocess.run([str(Path(sys.executable).parent / 'nnictl'), 'stop', experiment_id], capture_output=True)
    finals = {m['trialJobId']: report.decode_metric(m['data']) for m in metrics if m['type'] == 'FINAL'}
    return {
        'experiment': experiment_id, 'status': status, 'minutes': round(minutes, 2),
        'concurrency': config['trialConcurrency'],
        'trials': [{
            'shown': json.loads(trial['hyperParameters'][0])['parameters'],
            'ran': {key: finals.get(trial['trialJobId'], {}).get(key) for key in ('variant', 'seed')},
            'status': trial['status'],
            'seconds': round((trial['endTime'] - trial['startTime']) / 1000, 1),
        } for trial in sorted(trials, key=lambda trial: trial['sequenceId'])],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+', default=['darts'])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2, 3])
    parser.add_argument('--settings', nargs='+', default=SETTINGS, metavar='CONCURRENCY:THREADS',
                        help='the experiments, in order (default: %(default)s)')
    parser.add_argument('--trial-flags', default='', help='added to the trial command, e.g. "--search-epochs 1"')
    parser.add_argument('--port', type=int, default=8090)
    parser.add_argument('--timeout-min', type=float, default=60, help='per experiment')
    parser.add_argument('--poll-s', type=float, default=10, help="seconds between checks of the experiment's status")
    parser.add_argument('--output', type=Path, default=ROOT / 'benchmarks' / 'results' / 'concurrent_trials.json')
    arguments = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory(prefix='concurrent-trials-') as directory:
        for setting in arguments.settings:
            concurrency, threads = (int(number) for number in setting.split(':'))
            config = experiment_config(arguments.variants, arguments.seeds, concurrency, threads,
                                       arguments.trial_flags, Path(directory) / f'concurrency{concurrency}')
            run = {'threads': threads, **run_experiment(config, arguments.port, arguments.timeout_min,
                                                        arguments.poll_s)}
            print(f"trialConcurrency {concurrency}, --threads {threads}: {run['status']} after "
                  f"{run['minutes']:.1f} minutes", flush=True)
            runs.append(run)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps({
        'date': time.strftime('%Y-%m-%d'),
        'machine': {'cpu': cpu_name(), 'cores': os.cpu_count(), 'torch': torch.__version__},
        'arguments': {key: str(value) for key, value in vars(arguments).items()},
        'runs': runs}, indent=2))
    print(f'written {arguments.output}')


if __name__ == '__main__':
    main()
