"""Search quality on NAS-Bench-201's ground truth: run the grid as one nnictl experiment, wait, score.

``python benchmarks/nb201_quality.py`` starts ``experiments/search_quality.yml`` (every variant that
applies, the compositions, NNI's DARTS and ``random``, 10 seeds, searches only), waits until NNI says
DONE, and writes each variant's found cells scored by NB201's published accuracies
(:mod:`nni_darts_ext.nb201_summary`: median, quartiles, the median's percentile in the space, the
share in its top 10 %, a Mann-Whitney test against ``random``, search seconds as a ratio to NNI's
DARTS), beside the field's published NB201 results, as ``OUT.json``, ``OUT.md`` and a box plot
``OUT.png``. ``--resume ID`` goes on with a stopped experiment (NNI skips the trials that reported a
final result); ``--attach ID`` waits for a running one; ``--no-wait`` writes what it holds now.
``--variants``, ``--seeds`` and ``--set NAME=VALUE`` (a trial parameter or a variant option over the
trial command's; ``VARIANT.OPTION=VALUE`` for one variant's option) run a part of the grid or the
testbed with one setting changed, for example ``--variants pcdarts random --set search_width=16`` or
``--variants stabilized random --set stabilized.eta=0.01``. ``--over EARLIER.json`` writes the earlier
grid with this experiment's variants searched again in place of their rows; given several times,
each file's variants replace those of the files before it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from nni_darts_ext import nb201_summary, report  # noqa: E402
from nni_darts_ext.config import FIELDS  # noqa: E402
from nni_darts_ext.nb201 import GroundTruth, load_table  # noqa: E402

from every_variant import create, nni_status  # noqa: E402  (benchmarks/ is the script's first import path)
from machine import cpu_name  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

ANCHORS = {
    'DARTS 1st and 2nd order (NB201 paper)': 54.30,
    'PC-DARTS (DrNAS table)': 93.41,
    'GDAS (NB201 paper)': 93.61,
    'DARTS- (its paper)': 93.80,
    'DrNAS, beta-DARTS (their papers)': 94.36,
    'optimum of the space': 94.37,
}
"""Published NB201 CIFAR-10 test accuracies (mean over search runs) of methods that searched on CIFAR-10
itself, as ../shared/nb201/ANCHORS.md lists and checks them."""

SPACE_PERCENTILES = (50, 90, 99)


def resume(experiment_id: str, port: int) -> str:
    """``nnictl resume``: the experiment goes on, its finished trials kept."""
    nnictl = str(Path(sys.executable).parent / 'nnictl')
    resumed = subprocess.run([nnictl, 'resume', experiment_id, '--port', str(port)], cwd=ROOT,
                             capture_output=True, text=True)
    if resumed.returncode:
        sys.exit(f'nnictl resume failed:\n{resumed.stdout}{resumed.stderr}')
    return experiment_id


def changed(config: Path, variants: list[str] | None, seeds: list[int] | None, settings: list[str]) -> str:
    """The experiment ``config`` with another grid or settings, as YAML; its trial code directory absolute."""
    experiment = yaml.safe_load(config.read_text())
    space = experiment['searchSpace']
    for name, values in (('variant', variants), ('seed', seeds)):
        if values:
            unknown = set(values) - set(space[name]['_value'])
            if unknown:
                sys.exit(f'error: --{name}s {", ".join(map(str, sorted(unknown)))} are not in {config}\'s grid '
                         f'({", ".join(map(str, space[name]["_value"]))})')
            space[name]['_value'] = values
    command = shlex.split(experiment['trialCommand'])
    at = command.index('--variant-settings') + 1 if '--variant-settings' in command else None
    per_variant = yaml.safe_load(command[at]) if at else {}
    for setting in settings:
        name, _, value = setting.partition('=')
        variant, dot, option = name.rpartition('.')
        if dot:
            per_variant.setdefault(variant, {})[option] = yaml.safe_load(value)
        else:
            command += [f'--{name.replace("_", "-")}', value] if name in FIELDS else ['--option', setting]
    if per_variant:
        settings_yaml = yaml.safe_dump(per_variant, default_flow_style=True, width=10_000).strip()
        command = command[:at] + [settings_yaml] + command[at + 1:] if at else command + ['--variant-settings', settings_yaml]
    experiment['trialCommand'] = shlex.join(command)
    experiment['trialCodeDirectory'] = str((config.parent / experiment['trialCodeDirectory']).resolve())
    if settings or variants or seeds:
        experiment['experimentName'] += ' (' + ', '.join(settings + [f'{n} {v}' for n, v in (('variants', variants),
                                                                                            ('seeds', seeds)) if v]) + ')'
    return yaml.safe_dump(experiment, sort_keys=False)


def rest(port: int, path: str) -> Any:
    """``GET /api/v1/nni/PATH`` of the experiment on ``port``."""
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/v1/nni/{path}', timeout=10) as response:
        return json.load(response)


def finished(port: int) -> str | None:
    """The experiment's final status, or None while it runs. A grid shorter than ``maxTrialNumber`` (room
    for the trials a resume runs again) ends in TUNER_NO_MORE_TRIAL, never DONE: it is finished once no
    trial is waiting or running."""
    status = nni_status(port)
    if status in ('DONE', 'ERROR', 'STOPPED'):
        return status
    if status == 'TUNER_NO_MORE_TRIAL' and all(t['status'] not in ('WAITING', 'RUNNING', 'UNKNOWN')
                                               for t in rest(port, 'trial-jobs')):
        return 'DONE'
    return None


def value_at(table: GroundTruth, dataset: str, percentile: float) -> float:
    """The space's accuracy at ``percentile`` on ``dataset``."""
    ranked = table.sorted_accuracies[dataset]
    return ranked[min(len(ranked) - 1, int(len(ranked) * percentile / 100))]


def box_plot(rows: list[nb201_summary.GroundTruthRow], table: GroundTruth, path: Path, title: str) -> None:
    """A box per variant (best median first) with every search as a dot, the space's percentiles
    dotted and the field's published results dashed."""
    first = table.datasets[0]
    figure, axes = plt.subplots(figsize=(12, 6))
    axes.boxplot([r.accuracies for r in rows], showfliers=False, widths=0.6)
    for position, row in enumerate(rows, start=1):
        axes.scatter([position] * len(row.accuracies), row.accuracies, s=12, color='tab:blue', alpha=0.6, zorder=3)
    lowest = min(min(r.accuracies) for r in rows)
    bottom = max(lowest, 80.0) - 1
    for percentile in SPACE_PERCENTILES:
        value = value_at(table, first, percentile)
        axes.axhline(value, color='grey', linestyle=':', linewidth=1)
        axes.annotate(f' space p{percentile}: {value:.2f}', (1, value), xycoords=('axes fraction', 'data'), fontsize=7,
                      va='center')
    for index, (name, value) in enumerate(ANCHORS.items()):
        if value >= bottom:
            axes.axhline(value, color=f'C{index + 1}', linestyle='--', linewidth=1, label=f'{name}: {value:.2f}')
    axes.set_ylim(bottom, value_at(table, first, 100) + 0.5)
    axes.set_xticks(range(1, len(rows) + 1), [r.variant for r in rows], rotation=30, ha='right', fontsize=8)
    axes.set_ylabel(f'NAS-Bench-201 {first} test accuracy (%)')
    below = [f'{name} {value:.2f}' for name, value in ANCHORS.items() if value < bottom]
    outside = sum(a < bottom for r in rows for a in r.accuracies)
    note = '; '.join(filter(None, [f'below the axis: {", ".join(below)}' if below else '',
                                   f'{outside} searches below {bottom:.0f}' if outside else '']))
    axes.set_title(textwrap.fill(title, 160) + (f'\n({note})' if note else ''), fontsize=10)
    axes.legend(fontsize=7, loc='lower left', title='searched on CIFAR-10 itself', title_fontsize=7)
    axes.grid(axis='y', alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def anchors_table() -> str:
    lines = ['| published (searched on CIFAR-10 itself) | CIFAR-10 test |', '|---|---:|']
    lines += [f'| {name} | {value:.2f} |' for name, value in ANCHORS.items()]
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', type=Path, default=ROOT / 'experiments' / 'search_quality.yml')
    parser.add_argument('--table', type=Path, default=ROOT.parent / 'shared' / 'nb201' / 'nb201.csv',
                        help='the NB201 table (default: the shared folder beside the repository)')
    parser.add_argument('--port', type=int, default=8090)
    parser.add_argument('--out', type=Path, default=ROOT / 'benchmarks' / 'results' / 'ground_truth_cpu')
    parser.add_argument('--timeout-min', type=float, default=240)
    parser.add_argument('--poll-s', type=float, default=60, help="seconds between checks of the experiment's status")
    started_how = parser.add_mutually_exclusive_group()
    started_how.add_argument('--attach', metavar='ID', help='wait for this running experiment instead')
    started_how.add_argument('--resume', metavar='ID', help='resume this stopped experiment and wait for it')
    parser.add_argument('--no-wait', action='store_true', help='write the results the experiment holds now')
    parser.add_argument('--variants', nargs='+', help="a part of the config's variants")
    parser.add_argument('--seeds', nargs='+', type=int, help="a part of the config's seeds")
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help='a trial parameter or variant option over the trial command\'s')
    parser.add_argument('--over', type=Path, action='append', default=[], metavar='EARLIER.json',
                        help="an earlier grid's results, in which this experiment's variants replace their rows "
                             '(a default changed, those variants searched again); given again, each later '
                             "file's variants replace the earlier files' rows alike")
    arguments = parser.parse_args()
    table = load_table(arguments.table)  # a missing or malformed table stops here, before any search
    config = changed(arguments.config, arguments.variants, arguments.seeds, arguments.set)

    if arguments.resume:
        experiment_id = resume(arguments.resume, arguments.port)
    elif arguments.attach:
        experiment_id = arguments.attach
    else:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / arguments.config.name
            path.write_text(config)
            experiment_id = create(path, arguments.port)
    print(f'experiment {experiment_id} on port {arguments.port}', flush=True)
    started = time.monotonic()
    while not (status := finished(arguments.port)) and not arguments.no_wait:
        if time.monotonic() - started > 60 * arguments.timeout_min:
            sys.exit(f'experiment {experiment_id} still {nni_status(arguments.port)} after {arguments.timeout_min} minutes')
        time.sleep(arguments.poll_s)
    status = status or nni_status(arguments.port)

    params = rest(arguments.port, 'experiment')['params']
    results = report.final_results(experiment_id)
    if arguments.over:  # the earlier grids, then this experiment, each replacing its variants' rows
        layers = [json.loads(path.read_text()) for path in arguments.over]
        layers.append({'experiment': experiment_id, 'config': params, 'results': results})
        results, sources, params = [], [], []
        for layer in layers:
            replaced = {result['variant'] for result in layer['results']}
            results = [result for result in results if result['variant'] not in replaced] + layer['results']
            sources.append(f"{layer['experiment']} for {', '.join(sorted(replaced))}" if sources else layer['experiment'])
            params += layer['config'] if isinstance(layer['config'], list) else [layer['config']]
        experiment_id = '; '.join(sources)
    rows = nb201_summary.summarize(results, table)
    summary = nb201_summary.format_table(rows, table)
    print(summary)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    machine = cpu_name()
    box_plot(rows, table, arguments.out.with_suffix('.png'),
             f'found cells on NAS-Bench-201, {len(results)} searches ({machine}, experiment {experiment_id})')
    arguments.out.with_suffix('.md').write_text(f'{summary}\n\n{anchors_table()}\n')
    arguments.out.with_suffix('.json').write_text(json.dumps({
        'experiment': experiment_id, 'status': status, 'date': time.strftime('%Y-%m-%d'),
        'machine': {'cpu': machine, 'cores': os.cpu_count(), 'torch': torch.__version__},
        'config': params, 'anchors': ANCHORS,
        'summary': [asdict(row) for row in rows], 'results': results}, indent=2))
    print(f'{status}: {len(results)} results; written {arguments.out}.md/.png/.json')


if __name__ == '__main__':
    main()
