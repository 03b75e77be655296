"""Every variant side by side in one nnictl experiment: run it, wait, report.

``python benchmarks/every_variant.py`` starts ``experiments/benchmark.yml`` (every variant,
``random`` and NNI's DARTS, 3 seeds, one budget; ``--config`` another experiment), waits until
NNI says DONE, scores the found architectures the reference sample of the trials' protocol has
not scored yet (``benchmarks/reference_sample.py add``: the sample's seeds, its protocol), and
writes the report (the Markdown table and the three-panel PNG of :mod:`nni_darts_ext.report`)
with every final result and the machine to ``benchmarks/results/every_variant_cpu.*``. The
experiment stays in NNI's web UI until ``nnictl stop``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import torch

from nni_darts_ext import report

import reference_sample  # benchmarks/ is the script's first import path
from machine import cpu_name

ROOT = Path(__file__).resolve().parent.parent


def nni_status(port: int) -> str:
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/v1/nni/check-status', timeout=10) as response:
        return json.load(response)['status']


def create(config: Path, port: int) -> str:
    """``nnictl create`` from the repository root; the new experiment's id."""
    nnictl = str(Path(sys.executable).parent / 'nnictl')
    created = subprocess.run([nnictl, 'create', '--config', str(config), '--port', str(port)],
                             cwd=ROOT, capture_output=True, text=True)
    output = re.sub(r'\x1b\[[0-9;]*m', '', created.stdout + created.stderr)  # nnictl colours its output
    match = re.search(r'Experiment ID: (\w+)', output)
    if created.returncode or not match:
        sys.exit(f'nnictl create failed:\n{output}')
    return match[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', type=Path, default=ROOT / 'experiments' / 'benchmark.yml')
    parser.add_argument('--port', type=int, default=8090)
    parser.add_argument('--out', type=Path, default=ROOT / 'benchmarks' / 'results' / 'every_variant_cpu')
    parser.add_argument('--timeout-min', type=float, default=120)
    parser.add_argument('--poll-s', type=float, default=30, help="seconds between checks of the experiment's status")
    parser.add_argument('--attach', metavar='ID', help='wait for and report this running experiment instead')
    arguments = parser.parse_args()

    experiment_id = arguments.attach or create(arguments.config, arguments.port)
    started = time.monotonic()
    print(f'experiment {experiment_id} on port {arguments.port}', flush=True)
    while (status := nni_status(arguments.port)) not in ('DONE', 'ERROR', 'STOPPED'):
        if time.monotonic() - started > 60 * arguments.timeout_min:
            sys.exit(f'experiment {experiment_id} still {status} after {arguments.timeout_min} minutes')
        time.sleep(arguments.poll_s)
    minutes = (time.monotonic() - started) / 60
    results = report.final_results(experiment_id)
    if any('reference' in result for result in results):
        for sample in sorted({result['reference'] for result in results if 'reference' in result}):
            reference_sample.main(['add', experiment_id, '--sample', sample])
    rows = report.summarize(results)
    table = report.format_table(rows)
    print(table)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    report.plot(rows, arguments.out.with_suffix('.png'), f'every variant, Fashion-MNIST, {cpu_name()}')
    arguments.out.with_suffix('.md').write_text(table + '\n')
    arguments.out.with_suffix('.json').write_text(json.dumps({
        'experiment': experiment_id, 'status': status, 'minutes': round(minutes, 1),
        'date': time.strftime('%Y-%m-%d'),
        'machine': {'cpu': cpu_name(), 'cores': os.cpu_count(), 'torch': torch.__version__},
        'config': arguments.config.read_text(), 'results': results}, indent=2))
    print(f'{status} after {minutes:.1f} minutes; written {arguments.out}.md/.png/.json')


if __name__ == '__main__':
    main()
