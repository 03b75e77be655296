"""Build, extend and check a reference sample (:mod:`nni_darts_ext.reference_sample`).

Every command saves the sample after each evaluation, so an interrupted run loses at most the
one in progress; run the same command again to go on. One command at a time extends a sample
(a second one, started beside it, stops with an error).

``draw``: draw ``--count`` architectures uniformly (draw ``i`` from seed ``i``) and evaluate each
at every seed of the sample, in draw order (a sample cut short is a uniform sample of fewer
draws). A new sample takes its protocol from ``--setting NAME=VALUE`` (every one of
:data:`~nni_darts_ext.reference_sample.PROTOCOL_SETTINGS`).

``fidelity``: retrain the first ``--count`` draws ``--factor`` times longer at the sample's first
seed and report the Kendall tau between the two protocols' rankings.

``add``: evaluate, by the same protocol, the architectures an experiment's trials found
(``add EXPERIMENT_ID``) or that ``arch.json`` files hold (``add --arch-file PATH``); they are kept
beside the draws, never counted as draws.

``show``: the sample's size, its scores' quantiles and the fidelity check; with ``--nb201-table``
(a sample of ``nni:NasBench201``), how its scores transfer to NAS-Bench-201's published accuracies:
the Kendall tau over every scored architecture, and what the architectures the protocol ranks best
score there (the best a search could do that found the protocol's favourites).

    python benchmarks/reference_sample.py draw --count 64
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from scipy.stats import kendalltau

from nni_darts_ext import architecture, trial
from nni_darts_ext.config import TrialConfig, parse_options
from nni_darts_ext.errors import ConfigError
from nni_darts_ext.nb201 import GroundTruth, load_table
from nni_darts_ext.reference_sample import PROTOCOL_SETTINGS, SAMPLES_DIR, ReferenceSample
from nni_darts_ext.report import final_results
from nni_darts_ext.strategies.random_architecture import RandomArchitecture

from machine import cpu_name  # benchmarks/ is the script's first import path

DEFAULT_SAMPLE = 'nasbench201_fashion_mnist_16'


@functools.lru_cache(maxsize=2)
def prepared(config: TrialConfig) -> tuple[Any, Any, Any]:
    """The data, space and evaluation size of ``config`` (its seed aside), loaded once per protocol."""
    _, data, space, _, size = trial.prepare(config, {})
    return data, space, size


def trial_config(protocol: dict[str, Any], seed: int, **changes: Any) -> TrialConfig:
    """The settings a trial of the protocol retrains with at ``seed`` (on this machine's CPU, one thread)."""
    return TrialConfig(**{**protocol, **changes, 'variant': 'random', 'seed': seed, 'accelerator': 'cpu', 'threads': 1})


def evaluate(protocol: dict[str, Any], found: dict[str, Any], seed: int, **changes: Any) -> tuple[float, float]:
    """Test accuracy and seconds of ``found`` retrained by ``protocol`` (updated by ``changes``) at ``seed``."""
    data, space, size = prepared(trial_config(protocol, 0, **changes))
    started = time.perf_counter()
    _, accuracy = trial.retrain_found(found, space, size, data, trial_config(protocol, seed, **changes), [])
    return accuracy, time.perf_counter() - started


def draw_architecture(protocol: dict[str, Any], index: int) -> dict[str, Any]:
    """Draw ``index`` of the sample: a uniform architecture of the protocol's space at its evaluation size."""
    data, space, size = prepared(trial_config(protocol, 0))
    return RandomArchitecture(seed=index).sample(space.search_space(size))


def evaluate_missing(sample: ReferenceSample, path: Path, keys: list[str]) -> None:
    """Evaluate each of ``keys`` at each of the sample's seeds it lacks, saving after each; one
    architecture's seeds before the next's, so that a sample cut short ranks by the draws it scored."""
    for key in keys:
        for seed in sample.seeds:
            if sample.accuracy(key, seed) is not None:
                continue
            accuracy, seconds = evaluate(sample.protocol, sample.architectures[key]['architecture'], seed)
            sample.record(key, sample.architectures[key]['architecture'], seed, accuracy, seconds)
            sample.save(path)
            print(f'seed {seed}: {accuracy:.4f} in {seconds:.0f} s  {key}', flush=True)


def draw(sample: ReferenceSample, path: Path, count: int) -> None:
    for index in range(len(sample.draws), count):
        found = draw_architecture(sample.protocol, index)
        key = architecture.describe(found)
        sample.architectures.setdefault(key, {'architecture': found, 'accuracy': {}, 'seconds': {}})
        sample.draws.append(key)
        sample.save(path)
    evaluate_missing(sample, path, sample.draws[:count])


def fidelity(sample: ReferenceSample, path: Path, count: int, factor: int) -> None:
    epochs = sample.protocol['retrain_epochs'] * factor
    if sample.fidelity and sample.fidelity['retrain_epochs'] != epochs:
        raise ConfigError(f"the sample's fidelity check retrains {sample.fidelity['retrain_epochs']} epochs; "
                          f'--factor {factor} asks for {epochs}')
    sample.fidelity = sample.fidelity or {'retrain_epochs': epochs, 'seed': sample.seeds[0], 'accuracy': {}}
    seed = sample.fidelity['seed']
    for key in dict.fromkeys(sample.draws[:count]):
        if key in sample.fidelity['accuracy']:
            continue
        accuracy, seconds = evaluate(sample.protocol, sample.architectures[key]['architecture'], seed,
                                     retrain_epochs=epochs)
        sample.fidelity['accuracy'][key] = accuracy
        sample.save(path)
        print(f'{epochs} epochs: {accuracy:.4f} in {seconds:.0f} s  {key}', flush=True)
    print(describe_fidelity(sample))


def rank_fidelity(sample: ReferenceSample) -> tuple[float, float, int] | None:
    """Kendall tau between the long retraining and the protocol: at the same seed, and against the
    seeds' mean score; with the number of architectures compared."""
    keys = [key for key in sample.fidelity.get('accuracy', {}) if sample.score(key) is not None]
    if len(keys) < 2:
        return None
    long = [sample.fidelity['accuracy'][key] for key in keys]
    same_seed = kendalltau(long, [sample.accuracy(key, sample.fidelity['seed']) for key in keys]).statistic
    mean = kendalltau(long, [sample.score(key) for key in keys]).statistic
    return float(same_seed), float(mean), len(keys)


def describe_fidelity(sample: ReferenceSample) -> str:
    fidelity = rank_fidelity(sample)
    if fidelity is None:
        return 'fidelity: not checked'
    same_seed, mean, count = fidelity
    return (f"fidelity: Kendall tau between {sample.fidelity['retrain_epochs']} and "
            f"{sample.protocol['retrain_epochs']} epochs over {count} architectures: {same_seed:.3f} at seed "
            f"{sample.fidelity['seed']}, {mean:.3f} against the mean over seeds {sample.seeds}")


def found_architectures(experiment_ids: list[str], arch_files: list[Path]) -> list[dict[str, Any]]:
    """The architectures an experiment's trials found (from their ``arch.json``) and those of ``arch_files``."""
    paths = list(arch_files)
    for experiment_id in experiment_ids:
        final_results(experiment_id)  # the experiment exists (a ConfigError names the known ones)
        paths += sorted((Path.home() / 'nni-experiments' / experiment_id).glob('environments/*/trials/*/arch.json'))
    return [json.loads(Path(path).read_text())['architecture'] for path in paths]


def add(sample: ReferenceSample, path: Path, found: list[dict[str, Any]]) -> None:
    keys = []
    for architecture_dict in found:
        key = architecture.describe(architecture_dict)
        sample.architectures.setdefault(key, {'architecture': architecture_dict, 'accuracy': {}, 'seconds': {}})
        keys.append(key)
    sample.save(path)
    evaluate_missing(sample, path, list(dict.fromkeys(keys)))
    for key in dict.fromkeys(keys):
        percentile = sample.percentile(key)
        print(f"percentile {'–' if percentile is None else f'{percentile:.1f}'}, score {sample.score(key):.4f}: {key}")


def show(sample: ReferenceSample) -> None:
    scores = sorted(sample.drawn_scores())
    print(f'{sample.name}: {len(scores)} of {len(sample.draws)} draws scored at seeds {sample.seeds} '
          f'({len(set(sample.draws))} distinct); {len(sample.architectures) - len(set(sample.draws))} found ones added')
    if len(scores) >= 2:
        quartiles = statistics.quantiles(scores, n=4)
        print(f'scores: min {scores[0]:.4f}, quartiles {", ".join(f"{q:.4f}" for q in quartiles)}, '
              f'max {scores[-1]:.4f}')
    print(describe_fidelity(sample))


def show_transfer(sample: ReferenceSample, table: GroundTruth) -> None:
    """The sample's scores against the table's first dataset (see the module)."""
    dataset = table.datasets[0]
    scored = sorted(((sample.score(key), table.score(entry['architecture'])[f'nb201_{dataset}'])
                     for key, entry in sample.architectures.items() if sample.score(key) is not None), reverse=True)
    if len(scored) < 2:
        print('transfer: fewer than two scored architectures')
        return
    scores, truths = zip(*scored)
    fair = [(score, truth) for score, truth in scored if truth > 10]  # not the constant networks
    print(f'transfer to NB201 {dataset}: Kendall tau {kendalltau(scores, truths).statistic:.3f} over {len(scored)} '
          f'architectures, {kendalltau(*zip(*fair)).statistic:.3f} over the {len(fair)} that can learn')
    for count in (1, 3, 5, 10):
        best = truths[:count]
        print(f'the protocol\'s best {count}: NB201 {dataset} mean {statistics.fmean(best):.2f} '
              f'(from {min(best):.2f} to {max(best):.2f})')
    print(f'best of all {len(scored)} on NB201: {max(truths):.2f}, scored {scores[truths.index(max(truths))]:.4f} '
          f'(rank {1 + truths.index(max(truths))})')


_HELD: dict[Path, Any] = {}
"""The sample files whose lock this process holds, with the open lock file."""


def lock(path: Path) -> None:
    """Hold the lock of sample file ``path`` until the process ends: two commands extending one
    sample at once would each save over what the other added."""
    path = Path(path).resolve()
    if path in _HELD:
        return
    handle = open(path.with_name(f'.{path.name}.lock'), 'w')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f'sample {path.stem} is being extended by another command; run one command at a time '
                          'on a sample') from None
    _HELD[path] = handle


def open_sample(arguments: argparse.Namespace) -> tuple[ReferenceSample, Path]:
    """The named sample, created from ``--setting`` s if it has no file yet; locked, but to ``show`` it."""
    path = arguments.directory / f'{arguments.sample}.json'
    if arguments.command != 'show':
        path.parent.mkdir(parents=True, exist_ok=True)
        lock(path)
    if path.is_file():
        if arguments.setting:
            raise ConfigError(f'sample {arguments.sample} exists with its own protocol; --setting only creates one')
        return ReferenceSample.load(path), path
    protocol = parse_options(arguments.setting)
    unknown = sorted(set(protocol) - set(PROTOCOL_SETTINGS))
    if unknown:
        raise ConfigError(f'{unknown[0]} is not a protocol setting; accepted: {", ".join(PROTOCOL_SETTINGS)}')
    sample = ReferenceSample(arguments.sample, {**{name: getattr(TrialConfig(), name) for name in PROTOCOL_SETTINGS},
                                                **protocol}, seeds=arguments.seeds,
                             machine=f'{cpu_name()}, 1 thread, torch {torch.__version__}')
    trial_config(sample.protocol, 0)  # the protocol's values are checked as trial settings
    return sample, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('command', choices=('draw', 'fidelity', 'add', 'show'))
    parser.add_argument('experiments', nargs='*', help='add: experiment ids whose found architectures to add')
    parser.add_argument('--sample', default=DEFAULT_SAMPLE, help='the sample (default: %(default)s)')
    parser.add_argument('--directory', type=Path, default=SAMPLES_DIR, help='where samples are (default: %(default)s)')
    parser.add_argument('--setting', action='append', default=[], metavar='NAME=VALUE',
                        help='a new sample: one protocol setting')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1], help='a new sample: its seeds')
    parser.add_argument('--count', type=int, default=64, help='draw: the draws; fidelity: the draws checked')
    parser.add_argument('--factor', type=int, default=4, help='fidelity: how many times longer to retrain')
    parser.add_argument('--arch-file', type=Path, action='append', default=[], help='add: an arch.json')
    parser.add_argument('--nb201-table', type=Path, help="show: the transfer to NAS-Bench-201's published accuracies")
    arguments = parser.parse_args(argv)
    torch.set_num_threads(1)
    trial.configure_output()
    try:
        sample, path = open_sample(arguments)
        if arguments.command == 'draw':
            draw(sample, path, arguments.count)
            show(sample)
        elif arguments.command == 'fidelity':
            fidelity(sample, path, arguments.count, arguments.factor)
        elif arguments.command == 'add':
            add(sample, path, found_architectures(arguments.experiments, arguments.arch_file))
        else:
            show(sample)
            if arguments.nb201_table:
                show_transfer(sample, load_table(arguments.nb201_table))
    except ConfigError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
