"""An experiment's results as one row per variant, and as a PNG bar chart.

``python -m nni_darts_ext.report EXPERIMENT_ID`` reads the final results from NNI's REST API
while the experiment runs and from its database afterwards. Variant and seed are read from
the final result each trial reports (the trial's own account of what it ran).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from .errors import ConfigError  # noqa: E402

NNI_HOME = Path.home() / 'nni-experiments'


@dataclass(frozen=True)
class VariantRow:
    """Mean and spread over a variant's seeds."""
    variant: str
    seeds: int
    accuracy_mean: float
    accuracy_std: float
    search_s: float
    retrain_s: float
    params: float


def final_results(experiment_id: str, nni_home: Path = NNI_HOME) -> list[dict[str, Any]]:
    """Every final result of the experiment: REST API if it runs, its database otherwise."""
    registry_file = nni_home / '.experiment'
    registry = json.loads(registry_file.read_text()) if registry_file.is_file() else {}
    if experiment_id not in registry:
        known = ', '.join(sorted(registry)) or 'none'
        raise ConfigError(f'no NNI experiment {experiment_id!r} in {registry_file}; known: {known}')
    entry = registry[experiment_id]
    if entry.get('status') == 'RUNNING':
        try:
            return _from_rest(entry['port'], entry.get('prefixUrl'))
        except OSError:
            pass  # the registry can say RUNNING after a crash: fall back to the database
    database = Path(entry.get('logDir') or nni_home) / experiment_id / 'db' / 'nni.sqlite'
    return _from_database(database)


def _from_rest(port: int, prefix: str | None) -> list[dict[str, Any]]:
    base = f'http://127.0.0.1:{port}/{prefix.strip("/") + "/" if prefix else ""}api/v1/nni'
    with urllib.request.urlopen(f'{base}/metric-data', timeout=10) as response:
        metrics = json.load(response)
    return [decode_metric(m['data']) for m in metrics if m['type'] == 'FINAL']


def _from_database(database: Path) -> list[dict[str, Any]]:
    if not database.is_file():
        raise ConfigError(f'no NNI database at {database}')
    with sqlite3.connect(f'file:{database}?mode=ro', uri=True) as connection:
        rows = connection.execute("SELECT data FROM MetricData WHERE type = 'FINAL'").fetchall()
    return [decode_metric(data) for (data,) in rows]


def decode_metric(data: str) -> dict[str, Any]:
    """A metric as NNI's REST API or database stores it, as the dict the trial reported."""
    value = json.loads(data)
    while isinstance(value, str):  # NNI stores the metric as a JSON string inside JSON
        value = json.loads(value)
    return value if isinstance(value, dict) else {'default': value}


def summarize(results: list[dict[str, Any]]) -> list[VariantRow]:
    """Group final results by variant; accuracy mean and sample standard deviation over seeds."""
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_variant.setdefault(str(result.get('variant', '?')), []).append(result)
    rows = []
    for variant, group in sorted(by_variant.items()):
        accuracies = [float(r['default']) for r in group]
        rows.append(VariantRow(
            variant=variant, seeds=len(group),
            accuracy_mean=statistics.fmean(accuracies),
            accuracy_std=statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            search_s=statistics.fmean(float(r.get('search_s', 0)) for r in group),
            retrain_s=statistics.fmean(float(r.get('retrain_s', 0)) for r in group),
            params=statistics.fmean(float(r.get('params', 0)) for r in group),
        ))
    return sorted(rows, key=lambda row: -row.accuracy_mean)


def format_table(rows: list[VariantRow]) -> str:
    """A Markdown table, best variant first."""
    lines = ['| variant | seeds | test accuracy (%) | search s | retrain s | parameters |',
             '|---|---:|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f'| {r.variant} | {r.seeds} | {100 * r.accuracy_mean:.2f} ± {100 * r.accuracy_std:.2f} '
                     f'| {r.search_s:.1f} | {r.retrain_s:.1f} | {r.params:,.0f} |')
    return '\n'.join(lines)


def plot(rows: list[VariantRow], path: Path, title: str) -> None:
    """Bar chart of test accuracy with one standard deviation as error bars."""
    figure, axes = plt.subplots(figsize=(1.2 * len(rows) + 2, 3.5))
    axes.bar([r.variant for r in rows], [100 * r.accuracy_mean for r in rows],
             yerr=[100 * r.accuracy_std for r in rows], capsize=4, color='tab:blue')
    low = min(100 * (r.accuracy_mean - r.accuracy_std) for r in rows)
    axes.set_ylim(max(0.0, low - 5), 100)
    axes.set_ylabel('test accuracy (%)')
    axes.set_title(title)
    figure.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m nni_darts_ext.report`` and ``nni-darts-report``."""
    parser = argparse.ArgumentParser(prog='python -m nni_darts_ext.report', description=__doc__.splitlines()[0])
    parser.add_argument('experiment_id')
    parser.add_argument('--png', type=Path, help='where to write the bar chart (default: report-ID.png)')
    parser.add_argument('--nni-home', type=Path, default=NNI_HOME, help=f'default: {NNI_HOME}')
    arguments = parser.parse_args(argv)
    try:
        results = final_results(arguments.experiment_id, arguments.nni_home)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if not results:
        print(f'error: experiment {arguments.experiment_id} has no final results yet', file=sys.stderr)
        return 1
    rows = summarize(results)
    print(format_table(rows))
    png = arguments.png or Path(f'report-{arguments.experiment_id}.png')
    png.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, png, f'NNI experiment {arguments.experiment_id}')
    print(f'chart: {png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
