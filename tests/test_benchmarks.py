"""Every script in ``benchmarks/`` runs to the end at a tiny budget and writes what it documents.

Each script runs as a subprocess, as a user runs it, with options that cut its measurement to
seconds; the test checks the exit code and the output files. A module of ``benchmarks/``
without a ``__main__`` block is a helper (``side_by_side.py``): it is covered by the scripts
that import it. A new script fails here until it has a tiny run in :data:`SMOKE_RUNS`.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from nni_darts_ext import make_strategy
from nni_darts_ext.nb201_summary import architecture_of
from nni_darts_ext.spaces import Size, load_space

from .conftest import QUICK, fake_fashion_mnist
from .nb201_table import fake_nb201_table
from .nnictl_helpers import NNICTL, REPOSITORY, free_port, small_experiment, trial_command

BENCHMARKS = REPOSITORY / 'benchmarks'
sys.path.insert(0, str(BENCHMARKS))
SIDE_BY_SIDE_KEYS = {'device', 'threads', 'arguments', 'runs'}
"""What :func:`side_by_side.report` writes."""
SIDE_BY_SIDE_TINY = ['--width', '4', '--cells', '1', '--image-size', '4', '--batch', '2', '--steps', '1',
                     '--threads', '1']
"""One cell of 4 channels on 4x4 images, one timed step: the side-by-side flags at their smallest."""


def has_main_block(path: Path) -> bool:
    """Whether the module runs something as a script (``if __name__ == '__main__':``)."""
    return any(isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
               for node in ast.parse(path.read_text()).body)


def imported_modules(path: Path) -> set[str]:
    """The top-level names of the modules ``path`` imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split('.')[0])
    return names


MODULES = sorted(BENCHMARKS.glob('*.py'))
SCRIPTS = [path.name for path in MODULES if has_main_block(path)]
HELPERS = [path.name for path in MODULES if not has_main_block(path)]


@dataclass(frozen=True)
class SmokeRun:
    """A script's tiny run: its options (``tmp_path`` -> arguments), what it writes, how to check that."""
    options: Callable[[Path], list[str]]
    output: str
    check: Callable[[dict[str, Any]], None]
    extra_files: tuple[str, ...] = ()


def check_collapse(written: dict[str, Any]) -> None:
    assert set(written) == {'machine', 'experiment', 'runs'}
    assert written['experiment'] == 'experiments/search_quality.yml'
    assert [(run['variant'], run['budget'], run['seed']) for run in written['runs']] == [
        ('darts', 1, 0), ('pdarts', 1, 0), ('darts', 2, 0), ('pdarts', 2, 0)]
    epochs = [len(run['epochs']) for run in written['runs']]
    assert epochs == [1, 10, 2, 20]  # pdarts: the testbed's stages of 3 + 3 + 4 epochs, stretched
    darts_1x, pdarts_1x, darts_2x, _ = written['runs']
    assert darts_2x['arc_learning_rate'] == pytest.approx(darts_1x['arc_learning_rate'])  # the 1x rate throughout
    for run in written['runs']:
        assert run['set'] == TESTBED_ON_DIGITS  # what a resumed grid must search with again
        assert set(architecture_of(run)) == set(architecture_of(run, 'unconstrained_arch')) and len(architecture_of(run)) == 6
        assert 0 <= run['parameter_free'] <= 6 and 0 <= run['normalized_entropy'] <= 1


TESTBED_ON_DIGITS = {'dataset': 'digits', 'image_size': 8, 'train_subset': 64, 'test_subset': 32, 'search_subset': 64,
                     'batch_size': 16, 'search_epochs': 1}
"""The testbed on a slice of digits: one search epoch (P-DARTS's stages keep their 10)."""


def collapse_options(tmp_path: Path) -> list[str]:
    """Two budgets of darts and pdarts, scored by a made-up table of every NB201 cell."""
    return ['--variants', 'darts', 'pdarts', '--budgets', '1', '2', '--seeds', '0',
            '--table', str(fake_nb201_table(tmp_path / 'table.csv')),
            *(f'--set={name}={value}' for name, value in TESTBED_ON_DIGITS.items()),
            '--output', str(tmp_path / 'collapse.json')]


ALL_SKIP = ' '.join(f'cell/{i}_{j}=skip_connect' for j in range(1, 4) for i in range(j))


def ground_truth_options(tmp_path: Path) -> list[str]:
    """The ground-truth grid cut to darts and random at seed 0 on digits, scored by a made-up table,
    over an earlier grid whose darts row it replaces, and a later one whose pcdarts row replaces the earlier's."""
    table = fake_nb201_table(tmp_path / 'table.csv')
    earlier = [{'variant': variant, 'seed': 7, 'arch': ALL_SKIP, 'search_s': 1.0} for variant in ('darts', 'pcdarts')]
    (tmp_path / 'earlier.json').write_text(json.dumps({'experiment': 'earlier1', 'config': {'searchSpace': {}},
                                                       'results': earlier}))
    later = [{'variant': 'pcdarts', 'seed': 8, 'arch': ALL_SKIP, 'search_s': 1.0}]
    (tmp_path / 'later.json').write_text(json.dumps({'experiment': 'earlier2', 'config': {'searchSpace': {}},
                                                     'results': later}))
    return ['--variants', 'darts', 'random', '--seeds', '0', '--table', str(table), '--over', 'earlier.json',
            '--over', 'later.json',
            *(f'--set={name}={value}' for name, value in {**TESTBED_ON_DIGITS, 'nb201_table': table}.items()),
            '--set=darts.gradient_clip_val=4', '--port', str(free_port()), '--poll-s', '2', '--timeout-min', '5', '--out', str(tmp_path / 'truth')]


def check_ground_truth(written: dict[str, Any]) -> None:
    assert set(written) == {'experiment', 'status', 'date', 'machine', 'config', 'anchors', 'summary', 'results'}
    earlier, later, config = written['config']
    assert earlier == later == {'searchSpace': {}} and written['experiment'].startswith('earlier1; earlier2 for pcdarts; ')
    assert written['experiment'].endswith(' for darts, random')
    assert written['status'] == 'DONE' and config['searchSpace']['seed']['_value'] == [0]
    assert ' --dataset digits ' in config['trialCommand']  # the --set flags, after the config's
    assert 'darts: {gradient_clip_val: 4}, pcdarts: {k: 4' in config['trialCommand']  # one variant's option
    # this grid's darts replaced the earliest one's, whose pcdarts the later one replaced
    assert sorted((r['variant'], r['seed']) for r in written['results']) == [('darts', 0), ('pcdarts', 8), ('random', 0)]
    rows = {row['variant']: row for row in written['summary']}
    for result in written['results'][1:]:  # this grid's, which its trials scored
        assert rows[result['variant']]['accuracies'] == [result['nb201_cifar10']]
    assert rows['random']['p_above_random'] is None and 0 < rows['darts']['p_above_random'] <= 1


def check_noisy_twin(written: dict[str, Any]) -> None:
    assert set(written) == {'machine', 'arguments', 'runs', 'summary'}
    assert [row['search'] for row in written['summary']] == ['darts', 'stabilized eta=0.1']
    for run in written['runs']:
        assert len(run['choices']) == 6  # the cell's edges
        assert all(set(p) >= {'conv_3x3', 'noisy_conv_3x3'} for p in run['choices'].values())
        assert run['noisy_above_clean'] == sum(p['noisy_conv_3x3'] > p['conv_3x3'] for p in run['choices'].values())


def check_ladarts(written: dict[str, Any]) -> None:
    assert set(written) == {'machine', 'parameters', 'timing', 'runs', 'summary'}
    assert written['parameters']['search_epochs'] == 1 and written['parameters']['train_subset'] == 64
    assert written['timing']['repeats'] == 1
    names = ['nni-darts', 'darts', 'ladarts lambda=0.01']
    assert [(run['name'], run['seed']) for run in written['runs']] == [(name, 0) for name in names]
    assert all(run['latency_ms'] > 0 and 'architecture' in run for run in written['runs'])
    # the quick start's trial settings: its architecture travel, one thread
    assert written['parameters']['arc_travel'] == 60 and written['parameters']['threads'] == 1
    assert all(run['arc_learning_rate'] > 3e-4 for run in written['runs'])
    assert [row['name'] for row in written['summary']] == names
    assert written['summary'][0]['latency_vs_nni_darts'] == 1.0


def check_latency_predictors(written: dict[str, Any]) -> None:
    assert set(written) == {'machine', 'arguments', 'runs'}
    [run] = written['runs']
    assert run['seed'] == 0 and set(run['errors']) == {'lookup', 'network', 'mean'}
    assert all(error >= 0 for error in run['errors'].values())


def check_pcdarts(written: dict[str, Any]) -> None:
    assert set(written) == SIDE_BY_SIDE_KEYS
    assert {name: run['batch'] for name, run in written['runs'].items()} == {
        'darts': 2, 'pcdarts k=4': 2, 'pcdarts k=4, batch x2': 4}
    assert all(run['step_s'] > 0 and run['activation_mb'] > 0 for run in written['runs'].values())
    assert all(-1 <= run['arch_gradient_cosine'] <= 1 for run in written['runs'].values())


def check_step_profile(written: dict[str, Any]) -> None:
    assert set(written['summary']) == {'nni-darts', 'pcdarts k=2', 'nni-darts, channels-last',
                                       'pcdarts k=2, channels-last'}
    assert written['arguments']['warm_process']
    for run in written['summary'].values():
        parts = run['parts_ms']
        assert run['step_ms'] > 0 and parts['forward'] > 0 and parts['backward'] > 0 and parts['optimizer'] > 0
        assert parts['rest'] >= 0  # no part counted twice: nested parts are exclusive of each other


def check_pdarts(written: dict[str, Any]) -> None:
    assert set(written) == SIDE_BY_SIDE_KEYS | {'whole_search'}
    assert {name: (run['cells'], run['operations']) for name, run in written['runs'].items()} == {
        'darts (3 cells)': (3, 8), 'pdarts stage 1 (3 cells)': (3, 8), 'pdarts stage 2 (4 cells)': (4, 5),
        'pdarts stage 3 (5 cells)': (5, 3)}
    whole = written['whole_search']
    assert (whole['batch'], whole['epochs']) == (8, 3)  # 3 stages of 1 epoch
    assert whole['ratio'] == pytest.approx(whole['pdarts_s'] / whole['darts_s'])


def check_scalable(written: dict[str, Any]) -> None:
    assert set(written) == SIDE_BY_SIDE_KEYS
    assert list(written['runs']) == ['darts, product space', 'scalable, product space',
                                     'darts, darts.yml (7 operations)']
    assert all(run['arch_parameters'] > 0 and run['median_step_s'] > 0 for run in written['runs'].values())


def check_second_derivatives(written: dict[str, Any]) -> None:
    assert set(written) == {'machine', 'arguments', 'points'}
    assert [point['weight_steps'] for point in written['points']] == [0, 1]
    for point in written['points']:
        [measured] = point['batches']
        assert measured['eta'] > 0 and list(measured['finite_differences']) == ['0.1']
        assert -1 <= measured['finite_differences']['0.1']['hu_cosine'] <= 1


def check_depthwise_gradients(written: dict[str, Any]) -> None:
    assert set(written) == {'machine', 'arguments', 'rows'}
    timings = ['forward', 'input_gradient', 'input_gradient_as_forward', 'kernel_gradient', 'kernel_gradient_from_3x3']
    assert len(written['rows']) == 7
    assert all(list(row) == ['shape', *timings] and all(row[key] > 0 for key in timings) for row in written['rows'])


def check_stabilized(written: dict[str, Any]) -> None:
    assert set(written) == {'machine', 'arguments', 'runs'}
    assert list(written['runs']) == ["NNI's DARTS (first order)", 'darts2 (double backward, default)',
                                     'darts2 (finite differences)', 'stabilized (double backward, default)',
                                     'stabilized (finite differences)']
    # 8 images at batch 4: one weight step, timed
    assert all(run['steps'] == 1 and run['step_s'] > 0 and run['peak_rss_mb'] > 0
               for run in written['runs'].values())


def check_arc_travel(written: dict[str, Any]) -> None:
    assert set(written) == {'machine', 'variant', 'parameters', 'runs'}
    assert written['parameters']['space'] == 'nni:NasBench201'  # the testbed's trial command, read from its YAML
    assert [(run['arc_travel'], run['seed']) for run in written['runs']] == [(None, 0), (6.0, 0)]
    own, travelled = written['runs']
    assert own['arc_learning_rate'] == 3e-4
    # 64 images a half at batch 16: 4 architecture steps an epoch, 1 epoch
    assert travelled['arc_learning_rate'] == pytest.approx(6.0 / 4)
    assert all(0 <= record['normalized_entropy'] <= 1 for run in written['runs'] for record in run['epochs'])


def arc_travel_options(tmp_path: Path) -> list[str]:
    """The testbed's darts at two travels, one epoch on 256 generated Fashion-MNIST images (the testbed's dataset,
    without Debian's dataset-fashion-mnist) and no NB201 table (a search reads none)."""
    fake_fashion_mnist(tmp_path / 'fashion-mnist', False, train=256, test=32)
    settings = {'data_dir': tmp_path / 'fashion-mnist', 'nb201_table': 'null', 'train_subset': 256,
                'search_subset': 128, 'search_epochs': 1, 'batch_size': 16, 'image_size': 8}
    return ['--travels', 'none', '6', '--seeds', '0', *(f'--set={name}={value}' for name, value in settings.items()),
            '--output', str(tmp_path / 'arc_travel.json')]


def check_reference_sample(written: dict[str, Any]) -> None:
    assert written['name'] == 'tiny' and written['seeds'] == [0] and len(written['draws']) == 1
    [entry] = written['architectures'].values()
    assert set(entry['accuracy']) == {'0'} and 0 <= entry['accuracy']['0'] <= 1


def check_every_variant(written: dict[str, Any]) -> None:
    assert set(written) == {'experiment', 'status', 'minutes', 'date', 'machine', 'config', 'results'}
    assert written['status'] == 'DONE'
    assert yaml.safe_load(written['config'])['searchSpace']['variant']['_value'] == ['darts']
    [result] = written['results']
    assert (result['variant'], result['seed']) == ('darts', 0) and 0 <= result['default'] <= 1


def check_concurrent_trials(written: dict[str, Any]) -> None:
    assert set(written) == {'date', 'machine', 'arguments', 'runs'}
    assert [(run['concurrency'], run['threads']) for run in written['runs']] == [(2, 1)]
    for run in written['runs']:
        assert run['status'] == 'DONE' and run['minutes'] > 0
        [trial] = run['trials']
        assert trial['status'] == 'SUCCEEDED' and trial['shown'] == trial['ran'] == {'variant': 'random', 'seed': 0}
        assert trial['seconds'] > 0


def check_nb201_latency(written: dict[str, Any]) -> None:
    assert written['timed'] == len(written['latency_ms']) == 5 and written['of'] == 5 ** 6
    assert set(written['repeated_ms']) <= set(written['latency_ms']) and len(written['repeated_ms']) == 2
    assert [len(c) for c in written['repeated_chunks']] == [2] and len(written['repeated_reference_ms']) == 1
    assert len(written['reference_ms']) == 3 and [len(c) for c in written['chunks']] == [2, 2, 1]
    assert [cell for chunk in written['chunks'] for cell in chunk] == list(written['latency_ms'])
    assert written['network']['width'] == 4 and written['network']['cells'] == 1
    assert all(ms > 0 for ms in [*written['latency_ms'].values(), *written['reference_ms']])
    assert all(name.startswith('cell/0_1=') and '~' not in name for name in written['latency_ms'])  # no NB201 string


def fake_latency_table(tmp_path: Path) -> tuple[Path, Path]:
    """A made-up NB201 table and a made-up latency of every cell as NB201's evaluation network."""
    table = fake_nb201_table(tmp_path / 'table.csv')
    cells = [line.split(',')[1] for line in table.read_text().splitlines()[1:]]
    latency = tmp_path / 'latency.json'
    from nb201_latency import stored
    chunks = [[stored(cell) for cell in cells[start:start + 50]] for start in range(0, len(cells), 50)]
    latency.write_text(json.dumps({'network': {'width': 16, 'cells': 5, 'input': [1, 3, 32, 32]},
                                   'latency_ms': {stored(cell): 2.0 + index % 11 for index, cell in enumerate(cells)},
                                   'chunks': chunks, 'reference_ms': [10.0] * len(chunks)}))
    return table, latency


def ladarts_front_options(tmp_path: Path) -> list[str]:
    """darts, random and one LA-DARTS weight on the testbed cut to digits, scored by made-up tables of
    every NB201 cell's accuracy and latency."""
    table, latency = fake_latency_table(tmp_path)
    return ['--seeds', '0', '--weights', '0.01', '--only', 'darts', 'random', 'ladarts 0.01',
            '--table', str(table), '--latency', str(latency),
            *(f'--set={name}={value}' for name, value in {**TESTBED_ON_DIGITS, 'nb201_table': table}.items()),
            *(f'--ladarts-option={pair}' for pair in ('latency_samples=4', 'latency_warmup=0', 'latency_repeats=1',
                                                      f'latency_cache={tmp_path}/latency')),
            '--output', str(tmp_path / 'front.json')]


def check_ladarts_front(written: dict[str, Any]) -> None:
    summary = written['summary']
    assert list(summary) == ['darts', 'random', 'ladarts 0.01', 'the front']
    assert summary['darts']['latency_vs_darts'] == [1.0] and summary['darts']['predicted_ms'] == []
    assert len(summary['ladarts 0.01']['predicted_ms']) == 1 and len(summary['ladarts 0.01']['predictor_error_pct']) == 1
    for name in ('darts', 'random', 'ladarts 0.01'):
        assert len(summary[name]['cifar10']) == 1 and summary[name]['gap'][0] >= 0
        versus = summary[name]['paired_with_darts']
        assert versus['seeds'] == [0] and versus['cifar10_median_difference'] == round(
            summary[name]['cifar10'][0] - summary['darts']['cifar10'][0], 4)
        assert 0 <= summary[name]['hypervolume'] <= summary['the front']['hypervolume']
    assert written['runs'][2]['options']['input_shape'] == [3, 32, 32]


def check_latency_profile_size(written: dict[str, Any]) -> None:
    assert written['cells'] == 5 ** 6 and [row['size'] for row in written['rows']] == [4, 8]
    for row in written['rows']:
        for name in ('lookup', 'network'):
            assert row[name]['error_pct'] > 0 and -1 <= row[name]['spearman'] <= 1


def paired_options(tmp_path: Path) -> list[str]:
    """A grid's darts rows against a collapse run's 2x darts rows, seeds 0 to 2 on one side and 1 to 3 on the other."""
    cell = ' '.join(f'cell/{i}_{j}={{}}' for j in range(1, 4) for i in range(j))
    convs, skips = cell.format(*['conv_3x3'] * 6), cell.format(*['skip_connect'] * 6)
    grid, collapse = tmp_path / 'grid.json', tmp_path / 'collapse.json'
    grid.write_text(json.dumps({'results': [{'variant': 'darts', 'seed': s, 'arch': convs} for s in range(3)]}))
    collapse.write_text(json.dumps({'runs': [{'variant': 'darts', 'budget': b, 'seed': s, 'arch': skips if b == 2 else convs}
                                             for s in range(1, 4) for b in (1, 2)]}))
    return [f'{grid}:darts', f'{collapse}:darts:2', '--table', str(fake_nb201_table(tmp_path / 'table.csv')),
            '--output', str(tmp_path / 'paired.json')]


def check_paired(written: dict[str, Any]) -> None:
    # the made-up table scores a cell 50 + (its index mod 45): every conv_3x3 is index 11718, every skip 3906
    assert written['seeds'] == [1, 2]
    assert written['first_cifar10'] == [50 + 11718 % 45] * 2 and written['second_cifar10'] == [50 + 3906 % 45] * 2
    assert written['median_difference'] == 11718 % 45 - 3906 % 45


def every_variant_options(tmp_path: Path) -> list[str]:
    """The benchmark's experiment cut to one quick trial (darts, seed 0, 64 images) on a free port."""
    flags = {**QUICK, 'train_subset': 64, 'test_subset': 32, 'batch_size': 16}
    config = small_experiment('benchmark', tmp_path, ['darts'], trial_command(flags))
    path = tmp_path / 'benchmark.yml'
    path.write_text(yaml.safe_dump(config))
    return ['--config', str(path), '--port', str(free_port()), '--poll-s', '2', '--timeout-min', '5',
            '--out', str(tmp_path / 'every_variant')]


SMOKE_RUNS = {
    'arc_travel.py': SmokeRun(arc_travel_options, 'arc_travel.json', check_arc_travel, ('arc_travel.png',)),
    'reference_sample.py': SmokeRun(
        lambda tmp: ['draw', '--directory', str(tmp), '--sample', 'tiny', '--count', '1', '--seeds', '0',
                     *(f'--setting={pair}' for pair in ('dataset=digits', 'train_subset=64', 'test_subset=32',
                                                       'retrain_epochs=1', 'retrain_width=4', 'retrain_cells=1',
                                                       'retrain_batch_size=16'))],
        'tiny.json', check_reference_sample),
    'collapse.py': SmokeRun(collapse_options, 'collapse.json', check_collapse, ('collapse.png',)),
    'concurrent_trials.py': SmokeRun(
        lambda tmp: ['--variants', 'random', '--seeds', '0', '--settings', '2:1', '--port', str(free_port()),
                     '--poll-s', '2', '--timeout-min', '5', '--output', str(tmp / 'concurrent_trials.json'),
                     '--trial-flags=--train-subset 64 --test-subset 32 --batch-size 16 --search-epochs 1 '
                     '--retrain-epochs 1'],
        'concurrent_trials.json', check_concurrent_trials),
    'nb201_latency.py': SmokeRun(
        lambda tmp: ['--table', str(fake_nb201_table(tmp / 'table.csv')), '--width', '4', '--cells', '1',
                     '--chunk', '2', '--warmup', '0', '--repeats', '1', '--limit', '5', '--repeatability', '2',
                     '--output', str(tmp / 'latency.json')],
        'latency.json', check_nb201_latency, ('latency.png',)),
    'nb201_quality.py': SmokeRun(ground_truth_options, 'truth.json', check_ground_truth, ('truth.md', 'truth.png')),
    'depthwise_gradients.py': SmokeRun(
        lambda tmp: ['--batch', '2', '--calls', '1', '--repeats', '1', '--output', str(tmp / 'depthwise.json')],
        'depthwise.json', check_depthwise_gradients),
    'every_variant.py': SmokeRun(every_variant_options, 'every_variant.json', check_every_variant,
                                 ('every_variant.md', 'every_variant.png')),
    'ladarts_vs_darts.py': SmokeRun(
        lambda tmp: ['--weights', '0.01', '--seeds', '0', '--repeats', '1',
                     *(f'--set={pair}' for pair in ('train_subset=64', 'test_subset=32', 'batch_size=16',
                                                    'search_epochs=1', 'retrain_epochs=1')),
                     *(f'--ladarts-option={pair}' for pair in ('latency_samples=4', 'latency_warmup=0',
                                                               'latency_repeats=1', f'latency_cache={tmp}/latency')),
                     '--output', str(tmp / 'ladarts.json')],
        'ladarts.json', check_ladarts, ('ladarts.png',)),
    'ladarts_front.py': SmokeRun(ladarts_front_options, 'front.json', check_ladarts_front, ('front.png',)),
    'latency_profile_size.py': SmokeRun(
        lambda tmp: ['--sizes', '8', '4', '--latency', str(fake_latency_table(tmp)[1]), '--warmup', '0',
                     '--repeats', '1', '--cache', str(tmp / 'cache'), '--output', str(tmp / 'sizes.json')],
        'sizes.json', check_latency_profile_size),
    'latency_predictors.py': SmokeRun(
        lambda tmp: ['--samples', '4', '--repeats', '1', '--warmup', '0', '--output', str(tmp / 'latency.json')],
        'latency.json', check_latency_predictors),
    'noisy_twin.py': SmokeRun(
        lambda tmp: ['--variants', 'darts', '--etas', '0.1', '--seeds', '0', '--epochs', '1', '--output',
                     str(tmp / 'twin.json')], 'twin.json', check_noisy_twin),
    'paired.py': SmokeRun(paired_options, 'paired.json', check_paired),
    'pcdarts_vs_darts.py': SmokeRun(
        lambda tmp: [*SIDE_BY_SIDE_TINY, '--pc-batch-factor', '2', '--precision', 'bfloat16',
                     '--output', str(tmp / 'pcdarts.json')],
        'pcdarts.json', check_pcdarts),
    'pdarts_vs_darts.py': SmokeRun(
        lambda tmp: [*SIDE_BY_SIDE_TINY, '--stages', 'cpu', '--search-batch', '8', '--search-subset', '16',
                     '--stage-epochs', '1', '--output', str(tmp / 'pdarts.json')],
        'pdarts.json', check_pdarts),
    'scalable_vs_darts.py': SmokeRun(
        lambda tmp: [*SIDE_BY_SIDE_TINY, '--output', str(tmp / 'scalable.json')], 'scalable.json', check_scalable),
    'second_derivatives_accuracy.py': SmokeRun(
        lambda tmp: ['--batch', '8', '--steps', '0', '1', '--batches', '1', '--scales', '0.1', '--output',
                     str(tmp / 'second_derivatives.json')],
        'second_derivatives.json', check_second_derivatives),
    'step_profile.py': SmokeRun(
        lambda tmp: ['--variants', 'pcdarts', '--k', '2', '--width', '16', '--cells', '3', '--image-size', '8',
                     '--batch', '2', '--skip', '1', '--steps', '2', '--rounds', '1', '--warm-process',
                     '--layouts', 'default', 'channels-last', '--output', str(tmp / 'step_profile.json')],
        'step_profile.json', check_step_profile),
    'stabilized_vs_darts.py': SmokeRun(
        lambda tmp: ['--batch', '4', '--search-subset', '8', '--warmup-steps', '0', '--threads', '1', '--output',
                     str(tmp / 'stabilized.json')],
        'stabilized.json', check_stabilized),
}
"""Per script: options that make a run take seconds (fewer seeds, steps, images, epochs)."""


@pytest.mark.parametrize('script', SCRIPTS)
def test_script_runs_at_a_tiny_budget_and_writes_its_results(script, tmp_path):
    assert script in SMOKE_RUNS, f'benchmarks/{script} has no tiny run: add one to SMOKE_RUNS'
    smoke = SMOKE_RUNS[script]
    command = [sys.executable, str(BENCHMARKS / script), *smoke.options(tmp_path)]
    environment = {**os.environ, 'OMP_NUM_THREADS': '1'}
    try:
        finished = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True,
                                  timeout=300)
    finally:
        if script in ('every_variant.py', 'concurrent_trials.py', 'nb201_quality.py'):  # an experiment stays until stopped
            port = command[command.index('--port') + 1]
            subprocess.run([NNICTL, 'stop', '--port', port], capture_output=True, timeout=120)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-5000:]
    smoke.check(json.loads((tmp_path / smoke.output).read_text()))
    for name in smoke.extra_files:
        assert (tmp_path / name).stat().st_size > 0, name


def test_a_collapse_grid_resumes_only_with_the_settings_its_searches_ran_with(tmp_path):
    output = tmp_path / 'collapse.json'
    output.write_text(json.dumps({'machine': 'here', 'experiment': 'experiments/search_quality.yml', 'runs': [
        {'variant': 'darts', 'budget': 1, 'seed': 0, 'set': {'batch_size': 64}},
        {'variant': 'pdarts', 'budget': 1, 'seed': 0}]}))
    command = [sys.executable, str(BENCHMARKS / 'collapse.py'), '--variants', 'pdarts', 'darts', '--seeds', '0',
               '--budgets', '1', '--table', str(fake_nb201_table(tmp_path / 'table.csv')), '--output', str(output)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode != 0
    assert finished.stderr.strip().splitlines()[-1] == (
        f"error: {output} holds darts searches with --set {{'batch_size': 64}}, not {{}}; accepted: the same --set, "
        'or another --output')


def test_every_benchmark_module_is_a_script_or_a_helper_the_scripts_import():
    assert set(SMOKE_RUNS) == set(SCRIPTS), 'SMOKE_RUNS names a script that is gone'
    assert 'side_by_side.py' in HELPERS  # the side-by-side benchmarks' shared measuring code
    for helper in HELPERS:
        importers = [script for script in SCRIPTS if Path(helper).stem in imported_modules(BENCHMARKS / script)]
        assert importers, f'benchmarks/{helper} is neither a script nor imported by one'


BFLOAT16_COSINE = 0.98
"""How close bfloat16 autocast keeps the architecture gradient to float32's (cosine), on the hub supernet."""


@pytest.mark.parametrize('variant', ['darts', 'pcdarts'])
def test_bfloat16_autocast_keeps_the_architecture_gradient_within_tolerance(variant):
    from side_by_side import architecture_gradient_cosine  # benchmarks/, on the path above

    torch.manual_seed(0)
    space = load_space('nni:DARTS', 3, 10, 16).search_space(Size(8, 3))
    net = make_strategy(variant).mutate_model(space)
    images, labels = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    cosine = architecture_gradient_cosine(net, images, labels, 'bfloat16')
    assert BFLOAT16_COSINE <= cosine < 1, cosine  # below 1: autocast did compute in bfloat16


def test_the_reference_samples_transfer_ranks_its_favourites_on_the_table(tmp_path, capsys):
    import reference_sample  # benchmarks/reference_sample.py
    from nni_darts_ext.nb201 import load_table
    from nni_darts_ext.reference_sample import SAMPLES_DIR, ReferenceSample
    sample = ReferenceSample.load(SAMPLES_DIR / f'{reference_sample.DEFAULT_SAMPLE}.json')
    table = load_table(fake_nb201_table(tmp_path / 'table.csv'))
    reference_sample.show_transfer(sample, table)
    lines = capsys.readouterr().out.splitlines()
    favourite = max((key for key in sample.architectures if sample.score(key) is not None), key=sample.score)
    truth = table.score(sample.architectures[favourite]['architecture'])['nb201_cifar10']
    assert lines[0].startswith('transfer to NB201 cifar10: Kendall tau ') and len(lines) == 6
    assert lines[1] == f"the protocol's best 1: NB201 cifar10 mean {truth:.2f} (from {truth:.2f} to {truth:.2f})"


FRONT_POINTS = [(3.0, 90.0, 'c'), (1.0, 80.0, 'a'), (2.0, 79.0, 'b'), (3.0, 91.0, 'd'), (4.0, 91.0, 'e'),
                (5.0, 93.0, 'f'), (1.0, 70.0, 'g')]


def test_the_pareto_front_keeps_each_cell_no_faster_cell_matches():
    from front import front_accuracy, pareto_front
    front = pareto_front(FRONT_POINTS)
    assert front == [(1.0, 80.0, 'a'), (3.0, 91.0, 'd'), (5.0, 93.0, 'f')]
    assert [front_accuracy(front, x) for x in (0.5, 1.0, 2.9, 3.0, 4.9, 9.0)] == [80.0, 80.0, 80.0, 91.0, 91.0, 93.0]


def test_the_hypervolume_is_the_area_the_cells_dominate_beyond_the_reference():
    from front import hypervolume
    # the front a (1, 80), d (3, 91), f (5, 93) against (6, 75): 2 x 5 + 2 x 16 + 1 x 18
    assert hypervolume(FRONT_POINTS, (6.0, 75.0)) == 60.0
    # f lies beyond the reference latency, a below its accuracy: d alone, 1 x 6
    assert hypervolume(FRONT_POINTS, (4.0, 85.0)) == 6.0
    assert hypervolume([(7.0, 99.0, 'slow')], (6.0, 75.0)) == 0.0


def test_every_isomorphism_class_is_timed_before_any_second_member():
    from nb201_latency import timing_order
    classes = {'a1': 'A', 'b1': 'B', 'a2': 'A', 'c1': 'C', 'b2': 'B', 'a3': 'A'}
    order = timing_order(classes, seed=0)
    assert sorted(order[:3]) == ['a1', 'b1', 'c1'] and sorted(order[3:]) == ['a2', 'a3', 'b2']
    assert order == timing_order(classes, seed=0) and len({tuple(timing_order(classes, s)) for s in range(20)}) > 1


def test_each_chunk_is_read_at_the_reference_cells_typical_speed():
    from nb201_latency import chunk_scaled
    latency = {'a': 4.0, 'b': 6.0, 'c': 9.0}
    # the second chunk ran slow: its reference took 15 ms where it typically takes 10
    assert chunk_scaled(latency, [['a', 'b'], ['c']], [10.0, 15.0], typical=10.0) == {'a': 4.0, 'b': 6.0, 'c': 6.0}
    assert chunk_scaled(latency, [['a'], ['b', 'c']], [8.0, 12.0], typical=10.0) == {'a': 5.0, 'b': 5.0, 'c': 7.5}


NB201_CELLS = ['|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|',
               '|none~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|none~2|',
               '|skip_connect~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|nor_conv_3x3~2|',
               '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|']


def test_a_cells_operation_counts_set_its_latency():
    from nb201_latency import by_operation_counts, operation_counts, uncovered
    assert operation_counts(NB201_CELLS[0]) == ('avg_pool_3x3', 'none', 'none', 'none', 'nor_conv_3x3', 'skip_connect')
    assert operation_counts(NB201_CELLS[0]) == operation_counts(NB201_CELLS[1])
    timed = {NB201_CELLS[0]: 4.0, NB201_CELLS[1]: 6.0, NB201_CELLS[2]: 3.0}
    # the first two share their counts: both, and any cell with them, get their median
    assert by_operation_counts(timed, NB201_CELLS) == {NB201_CELLS[0]: 5.0, NB201_CELLS[1]: 5.0, NB201_CELLS[2]: 3.0}
    assert uncovered(NB201_CELLS, timed) == [NB201_CELLS[3]] and uncovered(NB201_CELLS[:3], timed) == []
