"""Collapse, shown or refuted: what longer searches find on the search-quality testbed.

Each variant (default ``darts``, ``stabilized``, ``pdarts``, ``pcdarts``) searched with its trial
settings in ``experiments/search_quality.yml`` at each ``--budgets`` multiple of their
``search_epochs`` (warm-ups and P-DARTS's stages stretched alike), at the 1x budget's
architecture learning rate throughout (``arc_travel`` grows with the budget), for each seed.
DARTS is said to collapse as its search grows longer: parameter-free operations (skip-connects,
pooling) take over the cell and its accuracy falls. Each found architecture is scored by the
reference sample's protocol (added to the sample, as ``benchmarks/reference_sample.py add``
does) and placed among its draws. Writes every run (JSON, after each; run again, it skips the
runs it has) and a PNG of the percentile and the parameter-free edges per budget.

    python benchmarks/collapse.py --seeds 0 1 2 --output benchmarks/results/collapse_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib
import torch

from nni_darts_ext import architecture, trial
from nni_darts_ext.config import parse_options, split_parameters
from nni_darts_ext.reference_sample import SAMPLES_DIR, ReferenceSample

import reference_sample  # benchmarks/ is the script's first import path
from figures import save_figure
from machine import cpu_name
from testbed import ROOT, SEARCH_QUALITY, search_curve, trial_parameters

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def stretched(parameters: dict[str, Any], budget: int) -> dict[str, Any]:
    """``parameters`` with ``budget`` times the search epochs, warm-up, stages and ``arc_travel``."""
    longer = {**parameters, 'search_epochs': parameters['search_epochs'] * budget}
    for name in ('arc_travel', 'warmup_epochs'):
        if longer.get(name) is not None:
            longer[name] = longer[name] * budget
    if isinstance(longer.get('stages'), list):  # [cells, operations, epochs, warm-up, skip dropout]
        longer['stages'] = [[cells, kept, epochs * budget, warmup * budget, dropout]
                            for cells, kept, epochs, warmup, dropout in longer['stages']]
    return longer


def run_once(variant: str, budget: int, seed: int, parameters: dict[str, Any], sample: ReferenceSample,
             sample_path: Path) -> dict[str, Any]:
    """One search at ``budget``, its found architecture scored in ``sample``."""
    run = search_curve(variant, seed, stretched(parameters, budget))
    found = run.pop('architecture')
    reference_sample.add(sample, sample_path, [found])
    last = run['epochs'][-1]
    return {**run, 'budget': budget, 'normalized_entropy': last['normalized_entropy'],
            'parameter_free': architecture.parameter_free(found), 'skip_connects': architecture.skip_connects(found),
            'score': sample.score(run['arch']), 'percentile': sample.percentile(run['arch'])}


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    figure, (ranks, free, skips) = plt.subplots(1, 3, figsize=(15, 3.8))
    for index, variant in enumerate(dict.fromkeys(run['variant'] for run in runs)):
        budgets = sorted({run['budget'] for run in runs if run['variant'] == variant})
        for axes, key in ((ranks, 'percentile'), (free, 'parameter_free'), (skips, 'skip_connects')):
            points = [(b, statistics.fmean(values)) for b in budgets
                      if (values := [run[key] for run in runs if (run['variant'], run['budget']) == (variant, b)
                                     and run[key] is not None])]
            if points:  # a sample without draws ranks nothing
                axes.plot(*zip(*points), marker='o', color=f'C{index}', label=variant)
    ranks.set_ylabel('percentile among the draws (mean over seeds)')
    free.set_ylabel('parameter-free edges (mean over seeds)')
    skips.set_ylabel('skip-connects (mean over seeds)')
    for axes in (ranks, free, skips):
        axes.set_xlabel('search budget (x the benchmark\'s)')
        axes.set_xscale('log', base=2)
    ranks.legend(fontsize=8)
    save_figure(figure, path, ranks, free, skips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+', default=['darts', 'stabilized', 'pdarts', 'pcdarts'])
    parser.add_argument('--budgets', nargs='+', type=int, default=[1, 2, 4])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--experiment', type=Path, default=SEARCH_QUALITY)
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help="a trial parameter over the experiment's")
    parser.add_argument('--sample', default=reference_sample.DEFAULT_SAMPLE)
    parser.add_argument('--directory', type=Path, default=SAMPLES_DIR, help='where the sample is')
    parser.add_argument('--output', type=Path, default=ROOT / 'benchmarks' / 'results' / 'collapse_cpu.json')
    arguments = parser.parse_args()
    trial.configure_output()
    torch.set_num_threads(1)
    sample_path = arguments.directory / f'{arguments.sample}.json'
    reference_sample.lock(sample_path)
    sample = ReferenceSample.load(sample_path)
    written = json.loads(arguments.output.read_text()) if arguments.output.is_file() else {}
    runs = written.get('runs', [])
    for seed in arguments.seeds:
        for budget in arguments.budgets:
            for variant in arguments.variants:
                if any((r['variant'], r['budget'], r['seed']) == (variant, budget, seed) for r in runs):
                    continue
                parameters = {**trial_parameters(arguments.experiment, variant), **parse_options(arguments.set),
                              'threads': 1}
                if not sample.matches(split_parameters({**parameters, 'variant': variant})[0]):
                    raise SystemExit(f'error: the runs do not follow the protocol of sample {arguments.sample}')
                runs.append(run_once(variant, budget, seed, parameters, sample, sample_path))
                print(f"{variant} {budget}x seed {seed}: percentile {runs[-1]['percentile']}, "
                      f"{runs[-1]['parameter_free']} parameter-free edges, normalized entropy "
                      f"{runs[-1]['normalized_entropy']:.3f} ({runs[-1]['search_s']} s)", flush=True)
                arguments.output.write_text(json.dumps({
                    'machine': f'{cpu_name()}, 1 thread, torch {torch.__version__}', 'sample': arguments.sample,
                    'experiment': str(arguments.experiment.relative_to(ROOT) if arguments.experiment.is_relative_to(ROOT)
                                      else arguments.experiment), 'runs': runs}, indent=1))
    plot(runs, arguments.output.with_suffix('.png'))
    print('| variant | budget | percentile per seed | parameter-free edges per seed | skip-connects per seed '
          '| normalized entropy |')
    print('|---|---:|---|---|---|---|')
    for variant in arguments.variants:
        for budget in arguments.budgets:
            chosen = [r for r in runs if (r['variant'], r['budget']) == (variant, budget)]
            percentiles = ', '.join('–' if r['percentile'] is None else f"{r['percentile']:.0f}" for r in chosen)
            free = ', '.join(str(r['parameter_free']) for r in chosen)
            skips = ', '.join(str(r['skip_connects']) for r in chosen)
            entropies = ', '.join(f"{r['normalized_entropy']:.2f}" for r in chosen)
            print(f'| {variant} | {budget}x | {percentiles} | {free} | {skips} | {entropies} |')


if __name__ == '__main__':
    main()
