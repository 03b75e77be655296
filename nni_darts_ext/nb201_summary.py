"""An experiment's found cells on NAS-Bench-201's ground truth: one row per variant.

Each trial's found cell (its ``arch``) is looked up in an NB201 table (:mod:`~nni_darts_ext.nb201`);
a variant's searches are summarized by the median and quartiles of the first dataset's accuracy
(CIFAR-10 in NB201's tables), the median's percentile in the whole space, the share of searches in
the space's top 10 %, a one-sided Mann-Whitney test against ``random`` 's draws, and the search
seconds as a ratio to NNI's own DARTS (``nni-darts``); the other datasets' medians beside.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from scipy.stats import mannwhitneyu

from .nb201 import GroundTruth

BASELINE = 'random'
YARDSTICK = 'nni-darts'
TOP_DECILE = 90.0


def architecture_of(result: dict[str, Any], key: str = 'arch') -> dict[str, str]:
    """The choices of a final result's one-line architecture (``cell/0_1=conv_3x3 cell/0_2=...``)."""
    return dict(pair.split('=', 1) for pair in str(result.get(key, '')).split())


@dataclass(frozen=True)
class GroundTruthRow:
    """A variant's found cells on the ground truth (see the module); ``accuracies`` per search, in seed order.

    ``p_above_random`` is None for ``random`` itself and without a ``random`` row; ``search_ratio``
    None without an ``nni-darts`` row; ``reconnected`` counts the searches whose unconstrained cell
    was disconnected and replaced (:mod:`~nni_darts_ext.connected`).
    """
    variant: str
    accuracies: tuple[float, ...]
    median: float
    quartiles: tuple[float, float]
    median_percentile: float
    top_decile: float
    other_medians: dict[str, float]
    search_s: float
    reconnected: int
    p_above_random: float | None = None
    search_ratio: float | None = None


def quartiles(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles (statistics' inclusive method); the value itself for one value."""
    if len(values) == 1:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method='inclusive')
    return q1, q3


def summarize(results: list[dict[str, Any]], table: GroundTruth) -> list[GroundTruthRow]:
    """One row per variant, best median first."""
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for result in sorted(results, key=lambda r: (str(r.get('variant')), r.get('seed', 0))):
        by_variant.setdefault(str(result.get('variant', '?')), []).append(result)
    first, *others = table.datasets
    scored = {variant: [table.score(architecture_of(r)) for r in group] for variant, group in by_variant.items()}
    baseline = [s[f'nb201_{first}'] for s in scored.get(BASELINE, [])]
    searches = {variant: statistics.median(float(r.get('search_s', 0)) for r in group)
                for variant, group in by_variant.items()}
    rows = []
    for variant, scores in scored.items():
        accuracies = [s[f'nb201_{first}'] for s in scores]
        median = statistics.median(accuracies)
        testable = baseline and variant != BASELINE
        rows.append(GroundTruthRow(
            variant=variant, accuracies=tuple(accuracies), median=median, quartiles=quartiles(accuracies),
            median_percentile=table.percentile(first, median),
            top_decile=sum(s[f'nb201_{first}_percentile'] >= TOP_DECILE for s in scores) / len(scores),
            other_medians={d: statistics.median(s[f'nb201_{d}'] for s in scores) for d in others},
            search_s=searches[variant],
            reconnected=sum(r.get('unconstrained_arch', r.get('arch')) != r.get('arch') for r in by_variant[variant]),
            p_above_random=float(mannwhitneyu(accuracies, baseline, alternative='greater').pvalue) if testable else None,
            search_ratio=searches[variant] / searches[YARDSTICK] if searches.get(YARDSTICK) else None,
        ))
    return sorted(rows, key=lambda row: -row.median)


def format_table(rows: list[GroundTruthRow], table: GroundTruth) -> str:
    """A Markdown table of the rows, in their order; ``–`` where a figure does not apply."""
    first, *others = table.datasets
    header = (f'| variant | searches | {first} median | IQR | median percentile | top 10 % | p vs {BASELINE} '
              f'| {" | ".join(f"{d} median" for d in others)} | search / {YARDSTICK} | reconnected |')
    lines = [header, '|---|---:|' + '---:|' * (6 + len(others)) + '---:|']
    for r in rows:
        p = '–' if r.p_above_random is None else f'{r.p_above_random:.3g}'
        ratio = '–' if r.search_ratio is None else f'{r.search_ratio:.2f}'
        medians = ' | '.join(f'{r.other_medians[d]:.2f}' for d in others)
        lines.append(f'| {r.variant} | {len(r.accuracies)} | {r.median:.2f} | {r.quartiles[0]:.2f}–{r.quartiles[1]:.2f} '
                     f'| {r.median_percentile:.1f} | {100 * r.top_decile:.0f} % | {p} | {medians} | {ratio} '
                     f'| {r.reconnected} |')
    return '\n'.join(lines)
