"""LA-DARTS against NNI's DARTS: test accuracy and measured latency of each exported architecture.

Each run is a whole quick-start trial (``experiments/quickstart.yml``'s trial settings: search,
export, retrain at the evaluation size, test) of NNI's DARTS unchanged (``nni-darts``), of
``darts`` (the same search, derived by the DARTS rule: ``ladarts`` without its latency term) or
of ``ladarts`` at one ``latency_weight``, for each seed. At the end every exported
architecture is built as deployed (the evaluation size) and all are timed together, in
interleaved rounds, on the same device, so their latencies are comparable. Writes the runs
(JSON, after every run) and a PNG of accuracy against latency.

    python benchmarks/ladarts_vs_darts.py --output benchmarks/results/ladarts_vs_darts_cpu.json

``--set KEY=VALUE`` changes a trial parameter of every run (``--set train_subset=256``),
``--ladarts-option KEY=VALUE`` an option of the ``ladarts`` runs only (``latency_samples=8``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import matplotlib
import torch

from nni_darts_ext import trial
from nni_darts_ext.config import parse_options, split_parameters
from nni_darts_ext.latency.measurement import TimingSettings, measure
from nni_darts_ext.latency.profile import deployed
from nni_darts_ext.spaces import load_space

from figures import save_figure  # benchmarks/ is the script's first import path
from machine import cpu_name
from testbed import ROOT, trial_parameters

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

QUICK_START = ROOT / 'experiments' / 'quickstart.yml'


def configurations(weights: list[float], ladarts_options: dict | None = None) -> list[tuple[str, dict]]:
    """``(name, the variant's parameters)``: NNI's DARTS, ``darts``, then ``ladarts`` at each weight (with
    ``ladarts_options``)."""
    return [('nni-darts', {'variant': 'nni-darts'}), ('darts', {'variant': 'darts'})] + [
        (f'ladarts lambda={weight:g}', {**(ladarts_options or {}), 'variant': 'ladarts', 'latency_weight': weight})
        for weight in weights]


def run_trial(parameters: dict, seed: int, threads: int, directory: Path) -> dict:
    """One whole trial with ``parameters`` (the quick start's, then these); its final result and architecture."""
    config, options = split_parameters({**parameters, 'seed': seed, 'threads': threads})
    final = trial.run(config, options, directory)
    final['architecture'] = json.loads((directory / 'arch.json').read_text())['architecture']
    return final


def measured_latencies(runs: list[dict], space_name: str, settings: TimingSettings) -> list[float]:
    """Every run's exported architecture at the evaluation size, timed together (ms)."""
    space = load_space(space_name, 1, 10, 8)
    networks = [deployed(space.build(space.evaluation, True), run['architecture']) for run in runs]
    return [timed.total_ms for timed in measure(networks, (1, 8, 8), settings)]


def summary(runs: list[dict]) -> list[dict]:
    """Per configuration: mean test accuracy (%) and measured latency (ms), and both against the first (NNI's DARTS)."""
    rows = []
    for name in dict.fromkeys(run['name'] for run in runs):
        mine = [run for run in runs if run['name'] == name]
        rows.append({'name': name, 'accuracy': statistics.mean(100 * run['default'] for run in mine),
                     'latency_ms': statistics.mean(run['latency_ms'] for run in mine),
                     'seeds': [run['seed'] for run in mine]})
    nni_darts = rows[0]
    for row in rows:
        row['accuracy_vs_nni_darts'] = row['accuracy'] - nni_darts['accuracy']
        row['latency_vs_nni_darts'] = row['latency_ms'] / nni_darts['latency_ms']
    return rows


def plot(runs: list[dict], rows: list[dict], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for index, row in enumerate(rows):
        mine = [run for run in runs if run['name'] == row['name']]
        axes.scatter([run['latency_ms'] for run in mine], [100 * run['default'] for run in mine],
                     color=f'C{index}', alpha=0.5, s=20)
        axes.scatter([row['latency_ms']], [row['accuracy']], color=f'C{index}', marker='D', s=60,
                     edgecolor='black', label=row['name'])
    axes.set_xlabel('measured latency of the exported network (ms, batch 1)')
    axes.set_ylabel('test accuracy (%)')
    axes.set_title('quick start (digits): seeds (dots) and their mean (diamonds)', fontsize=9)
    axes.legend(fontsize=8)
    save_figure(figure, path, axes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', nargs='+', type=float, default=[0.003, 0.01, 0.03])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=31, help='timed rounds of the final measurement')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help="a trial parameter of every run, over the quick start's (value read as YAML)")
    parser.add_argument('--experiment', type=Path, default=QUICK_START, help='whose trial settings the runs take')
    parser.add_argument('--ladarts-option', action='append', default=[], metavar='KEY=VALUE',
                        help='an option of the ladarts runs only (value read as YAML)')
    parser.add_argument('--output', type=Path, default=Path('benchmarks/results/ladarts_vs_darts_cpu.json'))
    arguments = parser.parse_args()
    trial.configure_output()
    torch.set_num_threads(arguments.threads)
    machine = f'{cpu_name()}, {arguments.threads} thread(s), torch {torch.__version__}'
    overrides = parse_options(arguments.set)
    common = {**trial_parameters(arguments.experiment, 'darts'), **overrides}
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in arguments.seeds:
            for name, parameters in configurations(arguments.weights, parse_options(arguments.ladarts_option)):
                run_settings = {**trial_parameters(arguments.experiment, parameters['variant']), **overrides,
                                **parameters}
                final = run_trial(run_settings, seed, arguments.threads, Path(scratch) / f'{len(runs)}')
                runs.append({'name': name, 'seed': seed, **final})
                print(f'{name} seed {seed}: test accuracy {final["default"]:.4f}, search {final["search_s"]} s',
                      flush=True)
                arguments.output.write_text(json.dumps({'machine': machine, 'parameters': common, 'runs': runs},
                                                       indent=2))
    settings = TimingSettings(repeats=arguments.repeats, threads=arguments.threads)
    for run, latency in zip(runs, measured_latencies(runs, common['space'], settings)):
        run['latency_ms'] = latency
    rows = summary(runs)
    arguments.output.write_text(json.dumps({'machine': machine, 'parameters': common, 'timing': vars(settings),
                                            'runs': runs, 'summary': rows}, indent=2))
    plot(runs, rows, arguments.output.with_suffix('.png'))
    print("| run | test accuracy (%) | vs NNI's DARTS (points) | measured latency (ms) | vs NNI's DARTS |")
    print('|---|---:|---:|---:|---:|')
    for row in rows:
        print(f'| {row["name"]} | {row["accuracy"]:.2f} | {row["accuracy_vs_nni_darts"]:+.2f} | '
              f'{row["latency_ms"]:.2f} | {row["latency_vs_nni_darts"]:.2f} |')


if __name__ == '__main__':
    main()
