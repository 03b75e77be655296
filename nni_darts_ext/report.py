"""An experiment's results as one row per variant, and as a PNG figure of three charts.

``python -m nni_darts_ext.report EXPERIMENT_ID`` reads the final results from NNI's REST API
while the experiment runs and from its database afterwards. Trials that followed a reference
sample's protocol are ranked in it as the sample stands now
(:mod:`~nni_darts_ext.reference_sample`); searches that ended near uniform are flagged. With
``--nb201-table``, the cells found on ``nni:NasBench201`` are also scored by NAS-Bench-201's published
accuracies (:mod:`~nni_darts_ext.nb201_summary`). Variant and seed are read from
the final result each trial reports (the trial's own account of what it ran).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import sqlite3
import statistics
import sys
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from . import architecture, nb201_summary  # noqa: E402
from .errors import ConfigError, check_directory  # noqa: E402
from .files import write_atomically  # noqa: E402
from .nb201 import load_table  # noqa: E402
from .reference_sample import SAMPLES_DIR, ReferenceSample  # noqa: E402
from .retiming import RETIMING, retimed_latencies  # noqa: E402

NNI_HOME = Path.home() / 'nni-experiments'
BASELINE = 'random'  # the variant every other one's accuracy is compared with
YARDSTICK = 'nni-darts'  # NNI's own DARTS: every other search's seconds are a ratio of its


@dataclass(frozen=True)
class VariantRow:
    """Mean and spread over a variant's seeds.

    Attributes
    ----------
    latency_ms
        Mean over the seeds whose result reports ``latency_ms``; None if none does.
    above_random
        Standard deviations the mean accuracy lies above the ``random`` variant's, see
        :func:`sigmas_above`; None for ``random`` itself, without a ``random`` row, or when undefined.
    percentile
        The median over the seeds of the found architecture's percentile in the reference sample
        the trials followed (:func:`percentile_of`); None where no seed has one.
    normalized_entropy
        The mean over the seeds of the search's final normalized entropy; None for ``random``.
    not_converged
        Seeds whose search ended with its architecture weights near uniform (it did not search).
    none_edges
        The mean over the seeds that report it of the found normal cell's zero-operation edges;
        None where no seed does.
    search_ratio
        ``search_s`` as a ratio of NNI's own DARTS's (``nni-darts``) in the same experiment; None
        without an ``nni-darts`` row.
    """
    variant: str
    seeds: int
    accuracy_mean: float
    accuracy_std: float
    search_s: float
    retrain_s: float
    params: float
    latency_ms: float | None
    skip_connects: float
    above_random: float | None = None
    percentile: float | None = None
    normalized_entropy: float | None = None
    not_converged: int = 0
    none_edges: float | None = None
    search_ratio: float | None = None


def final_results(experiment_id: str, nni_home: Path = NNI_HOME) -> list[dict[str, Any]]:
    """Every final result of the experiment: REST API if it runs, its database otherwise."""
    entry = _entry(experiment_id, nni_home)
    if entry.get('status') == 'RUNNING':
        try:
            return _from_rest(entry['port'], entry.get('prefixUrl'))
        except (OSError, ValueError):
            pass  # the registry can say RUNNING after a crash, and another program may hold the port now
    return _from_database(experiment_dir(experiment_id, nni_home) / 'db' / 'nni.sqlite')


def experiment_dir(experiment_id: str, nni_home: Path = NNI_HOME) -> Path:
    """The folder NNI keeps the experiment's database and trials in."""
    return Path(_entry(experiment_id, nni_home).get('logDir') or nni_home) / experiment_id


def _entry(experiment_id: str, nni_home: Path) -> dict[str, Any]:
    """The experiment's record in NNI's registry."""
    registry_file = nni_home / '.experiment'
    registry = _registry(registry_file)
    if experiment_id not in registry:
        known = ', '.join(sorted(registry)) or 'none'
        raise ConfigError(f'no NNI experiment {experiment_id!r} in {registry_file}; known: {known}')
    entry = registry[experiment_id]
    if not isinstance(entry, dict):
        raise ConfigError(f'{registry_file}: damaged: the entry of {experiment_id} is not a mapping; '
                          "NNI's experiment registry maps experiment ids to their records")
    return entry


def _registry(registry_file: Path) -> dict[str, Any]:
    """NNI's registry of experiments (empty where there is none), refused in one line where a crash
    or an edit left it anything but JSON's mapping of ids."""
    if not registry_file.is_file():
        return {}
    try:
        registry = json.loads(registry_file.read_text())
    except (OSError, ValueError) as err:  # unreadable, not UTF-8, not JSON
        raise ConfigError(f'{registry_file}: not NNI\'s experiment registry ({err}); it must be a JSON mapping '
                          'of experiment ids') from None
    if not isinstance(registry, dict):
        raise ConfigError(f'{registry_file}: not NNI\'s experiment registry (a JSON {type(registry).__name__}); '
                          'it must be a JSON mapping of experiment ids')
    return registry


def _from_rest(port: int, prefix: str | None) -> list[dict[str, Any]]:
    base = f'http://127.0.0.1:{port}/{prefix.strip("/") + "/" if prefix else ""}api/v1/nni'
    with urllib.request.urlopen(f'{base}/metric-data', timeout=10) as response:
        metrics = json.load(response)
    if not (isinstance(metrics, list) and all(isinstance(m, dict) and {'type', 'data'} <= m.keys() for m in metrics)):
        raise ValueError(f'port {port} does not answer as NNI\'s REST API')
    return [decode_metric(m['data']) for m in metrics if m['type'] == 'FINAL']


def _from_database(database: Path) -> list[dict[str, Any]]:
    if not database.is_file():
        raise ConfigError(f'no NNI database at {database}')
    try:
        with contextlib.closing(sqlite3.connect(f'file:{database}?mode=ro', uri=True)) as connection:
            rows = connection.execute("SELECT data FROM MetricData WHERE type = 'FINAL'").fetchall()
        return [decode_metric(data) for (data,) in rows]
    except (sqlite3.Error, ValueError, TypeError) as err:  # not SQLite, no MetricData table, a damaged row
        raise ConfigError(f'{database}: not an NNI experiment database ({err}); it must be the SQLite file '
                          'NNI wrote, with its MetricData table') from None


def decode_metric(data: str) -> dict[str, Any]:
    """A metric as NNI's REST API or database stores it, as the dict the trial reported."""
    value = json.loads(data)
    while isinstance(value, str):  # NNI stores the metric as a JSON string inside JSON
        value = json.loads(value)
    return value if isinstance(value, dict) else {'default': value}


LATENCY_AS_REPORTED = ('latency: as each trial measured its network when it ended (batch 1, 1 thread), while other '
                       'trials may have shared the cores; --retime times them all again together')
LATENCY_RETIMED = ("latency: every finished trial's network timed again after the experiment, all in the same "
                   f'interleaved rounds (batch 1, 1 thread, the median of {RETIMING.repeats})')


def with_latencies(results: list[dict[str, Any]], latencies: dict[tuple[str, int], float]) -> list[dict[str, Any]]:
    """``results`` with each (variant, seed)'s ``latency_ms`` replaced by ``latencies``' (dropped where it has none)."""
    return [{**r, 'latency_ms': latencies.get((r.get('variant'), r.get('seed')))} for r in results]


def summarize(results: list[dict[str, Any]]) -> list[VariantRow]:
    """Group final results by variant, best mean accuracy first.

    Accuracy is summarized by the mean and sample standard deviation over seeds, the other
    figures by their mean; every row is compared with the ``random`` variant if there is one.
    """
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_variant.setdefault(str(result.get('variant', '?')), []).append(result)
    rows = []
    for variant, group in sorted(by_variant.items()):
        accuracies = [float(r['default']) for r in group]
        percentiles = [p for p in map(percentile_of, group) if p is not None]
        entropies = [float(r['normalized_entropy']) for r in group if r.get('normalized_entropy') is not None]
        latencies = [float(r['latency_ms']) for r in group if r.get('latency_ms') is not None]
        none_edges = [float(r['none_edges']) for r in group if r.get('none_edges') is not None]
        rows.append(VariantRow(
            variant=variant, seeds=len(group),
            accuracy_mean=statistics.fmean(accuracies),
            accuracy_std=statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            search_s=statistics.fmean(float(r.get('search_s', 0)) for r in group),
            retrain_s=statistics.fmean(float(r.get('retrain_s', 0)) for r in group),
            params=statistics.fmean(float(r.get('params', 0)) for r in group),
            latency_ms=statistics.fmean(latencies) if latencies else None,
            skip_connects=statistics.fmean(float(r.get('skip_connects', 0)) for r in group),
            percentile=statistics.median(percentiles) if percentiles else None,
            normalized_entropy=statistics.fmean(entropies) if entropies else None,
            not_converged=sum(not architecture.converged(e) for e in entropies),
            none_edges=statistics.fmean(none_edges) if none_edges else None,
        ))
    baseline = next((row for row in rows if row.variant == BASELINE), None)
    if baseline is not None:
        rows = [row if row is baseline else replace(row, above_random=sigmas_above(row, baseline))
                for row in rows]
    yardstick = next((row for row in rows if row.variant == YARDSTICK), None)
    if yardstick is not None and yardstick.search_s > 0:
        rows = [replace(row, search_ratio=row.search_s / yardstick.search_s) for row in rows]
    return sorted(rows, key=lambda row: -row.accuracy_mean)


def percentile_of(result: dict[str, Any]) -> float | None:
    """The found architecture's percentile in the reference sample the trial followed, as the sample
    stands now (it may have scored the architecture since the trial ended); else the trial's own."""
    path = SAMPLES_DIR / f"{result.get('reference')}.json"
    if 'reference' not in result or not path.is_file():
        return result.get('percentile')
    return _sample(path, path.stat().st_mtime_ns).percentile(str(result.get('arch')))


@functools.lru_cache(maxsize=8)
def _sample(path: Path, modified_ns: int) -> ReferenceSample:
    """The sample in ``path``, read once per version of the file (a report ranks every trial in it)."""
    return ReferenceSample.load(path)


def sigmas_above(row: VariantRow, baseline: VariantRow) -> float | None:
    """How many standard deviations ``row``'s mean accuracy lies above ``baseline``'s.

    ``(mean_row - mean_baseline) / pooled_std`` with
    ``pooled_std = sqrt((std_row**2 + std_baseline**2) / 2)``, from the sample standard
    deviations over seeds.

    Returns
    -------
    float | None
        The difference in pooled standard deviations; None when ``pooled_std`` is 0
        (every seed of both variants scored the same), where the ratio is undefined.
    """
    pooled_std = math.sqrt((row.accuracy_std ** 2 + baseline.accuracy_std ** 2) / 2)
    if pooled_std == 0:
        return None
    return (row.accuracy_mean - baseline.accuracy_mean) / pooled_std


def format_table(rows: list[VariantRow]) -> str:
    """A Markdown table, in the order of ``rows``.

    Missing figures are shown as ``–``: latency when no seed measured it, `none` edges when no
    seed reported them, the search ratio without an ``nni-darts`` row, the comparison with
    ``random`` for ``random`` itself and when there is no ``random`` row. A comparison that is
    undefined (no spread in either variant's accuracy) is shown as ``n/a``.
    """
    has_baseline = any(r.variant == BASELINE for r in rows)
    lines = ['| variant | seeds | test accuracy (%) | percentile | normalized entropy | parameters | search s '
             f'| search / {YARDSTICK} | retrain s | latency ms | none edges | skip-connects | vs random (σ) |',
             '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        latency = '–' if r.latency_ms is None else f'{r.latency_ms:.2f}'
        if not has_baseline or r.variant == BASELINE:
            versus = '–'
        else:
            versus = 'n/a' if r.above_random is None else f'{r.above_random:+.1f}'
        percentile = '–' if r.percentile is None else f'{r.percentile:.0f}'
        ratio = '–' if r.search_ratio is None else f'{r.search_ratio:.2f}'
        none_edges = '–' if r.none_edges is None else f'{r.none_edges:.1f}'
        lines.append(f'| {r.variant} | {r.seeds} | {100 * r.accuracy_mean:.2f} ± {100 * r.accuracy_std:.2f} '
                     f'| {percentile} | {convergence_cell(r)} | {r.params:,.0f} | {r.search_s:.1f} | {ratio} '
                     f'| {r.retrain_s:.1f} | {latency} | {none_edges} | {r.skip_connects:.1f} | {versus} |')
    return '\n'.join(lines)


def convergence_cell(row: VariantRow) -> str:
    """The mean final normalized entropy, and how many seeds did not converge (``–`` without a search)."""
    if row.normalized_entropy is None:
        return '–'
    flag = f' ({row.not_converged} of {row.seeds} not converged)' if row.not_converged else ''
    return f'{row.normalized_entropy:.2f}{flag}'


def convergence_warning(rows: list[VariantRow]) -> str | None:
    """One line naming the variants with searches that ended near uniform, or ``None``."""
    flagged = [f'{r.variant} ({r.not_converged} of {r.seeds})' for r in rows if r.not_converged]
    if not flagged:
        return None
    return (f'not converged (normalized entropy above {architecture.NOT_CONVERGED_ABOVE}): {", ".join(flagged)}; '
            'these searches left their architecture weights near uniform, so they did not search and their '
            'cells are noise: raise arc_travel or the search budget')


MARKERS = 'osD^vPX*'
"""The points' markers; with matplotlib's ten colours, every one of 40 variants gets its own pair."""


def variant_styles(variants: list[str]) -> dict[str, dict[str, str]]:
    """Each variant's colour and marker in the chart, distinct for up to 40 variants."""
    return {variant: {'color': f'C{index % 10}', 'marker': MARKERS[index % len(MARKERS)]}
            for index, variant in enumerate(variants)}


def plot(rows: list[VariantRow], path: Path, title: str) -> None:
    """One PNG figure with three panels side by side, one colour and marker per variant, named in
    one legend below them.

    (a) test accuracy per variant, (b) accuracy against mean search time, (c) accuracy
    against measured latency (only the variants that have one). Error bars are one standard
    deviation of the accuracy over seeds.
    """
    styles = variant_styles([r.variant for r in rows])
    figure, (bars, search, latency) = plt.subplots(1, 3, figsize=(15, 4.5))
    bars.bar([r.variant for r in rows], [100 * r.accuracy_mean for r in rows],
             yerr=[100 * r.accuracy_std for r in rows], capsize=4, color=[styles[r.variant]['color'] for r in rows])
    low = min(100 * (r.accuracy_mean - r.accuracy_std) for r in rows)
    bars.set_ylim(max(0.0, low - 5), 100)
    bars.set_ylabel('test accuracy (%)')
    bars.set_title('(a) test accuracy', fontsize=10)
    # variant names such as 'pcdarts+stabilized' overlap when horizontal
    bars.tick_params(axis='x', labelrotation=30, labelsize=8)
    for label in bars.get_xticklabels():
        label.set_horizontalalignment('right')

    _styled_points(search, [(r.search_s, r) for r in rows], styles, 'mean search time (s)')
    search.set_title('(b) accuracy vs search cost', fontsize=10)
    measured = [(r.latency_ms, r) for r in rows if r.latency_ms is not None]
    if measured:
        _styled_points(latency, measured, styles, 'latency (ms, batch 1)')
    else:
        latency.text(0.5, 0.5, 'no latency measured', ha='center', va='center', transform=latency.transAxes)
        latency.set_xticks([])
        latency.set_yticks([])
    latency.set_title('(c) accuracy vs latency', fontsize=10)

    figure.suptitle(title)
    figure.tight_layout()
    # the variants are named once, below the panels, rather than beside points that may coincide
    handles, labels = search.get_legend_handles_labels()
    figure.legend(handles, labels, loc='upper center', bbox_to_anchor=(0.5, 0.0), ncol=min(len(rows), 6),
                  fontsize=8, frameon=False)
    figure.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(figure)


def _styled_points(axes: plt.Axes, points: list[tuple[float, VariantRow]], styles: dict[str, dict[str, str]],
                   xlabel: str) -> None:
    """Accuracy (%) against ``x`` with one-std error bars, each variant in its own colour and marker."""
    for x, row in points:
        axes.errorbar(x, 100 * row.accuracy_mean, yerr=100 * row.accuracy_std, fmt=styles[row.variant]['marker'],
                      color=styles[row.variant]['color'], capsize=3, label=row.variant)
    axes.set_xlabel(xlabel)
    axes.set_ylabel('test accuracy (%)')
    axes.grid(alpha=0.3)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m nni_darts_ext.report`` and ``nni-darts-report``."""
    parser = argparse.ArgumentParser(prog='python -m nni_darts_ext.report', description=__doc__.splitlines()[0])
    parser.add_argument('experiment_id')
    parser.add_argument('--png', type=Path, help='where to write the charts (default: report-ID.png)')
    parser.add_argument('--nni-home', type=Path, default=NNI_HOME, help=f'default: {NNI_HOME}')
    parser.add_argument('--nb201-table', type=Path, metavar='CSV',
                        help="score the cells found on nni:NasBench201 by NAS-Bench-201's published accuracies")
    parser.add_argument('--retime', action='store_true',
                        help="time every finished trial's network again, all together, instead of reporting "
                             'what each trial measured while others may have shared the cores')
    arguments = parser.parse_args(argv)
    png = arguments.png or Path(f'report-{arguments.experiment_id}.png')
    try:
        if os.path.isdir(png) or png.suffix.lower() != '.png':  # matplotlib would write DIR.png, refuse x.txt
            raise ConfigError(f'--png {png} is {"a directory" if os.path.isdir(png) else "not a .png file name"}; '
                              'accepted: a file name ending in .png')
        check_directory("--png's folder", png.parent)
        results = final_results(arguments.experiment_id, arguments.nni_home)
        if results and arguments.retime:
            results = with_latencies(results, retimed_latencies(experiment_dir(arguments.experiment_id,
                                                                               arguments.nni_home)))
        if results and arguments.nb201_table:
            table = load_table(arguments.nb201_table)
            ground_truth = nb201_summary.format_table(nb201_summary.summarize(results, table), table)
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if not results:
        print(f'error: experiment {arguments.experiment_id} has no final results yet', file=sys.stderr)
        return 1
    rows = summarize(results)
    print(format_table(rows))
    print(LATENCY_RETIMED if arguments.retime else LATENCY_AS_REPORTED)
    if arguments.nb201_table:
        print(f'\nNAS-Bench-201 ground truth ({arguments.nb201_table}):\n{ground_truth}')
    warning = convergence_warning(rows)
    if warning:
        print(warning)
    try:
        png.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(png, lambda partial: plot(rows, partial, f'NNI experiment {arguments.experiment_id}'))
    except OSError as err:  # the disk filled, or the folder changed, since the check
        print(f'error: --png {png} could not be written ({err.strerror or err}); the table above is complete',
              file=sys.stderr)
        return 1
    print(f'chart: {png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
