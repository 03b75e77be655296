"""Every trial parameter and variant option, fed a wrong type and an impossible value, the way NNI's
tuner would send it.

Each must stop the trial before any work with one line that names the parameter, exit status
2 (NNI marks the trial FAILED), and no output directory.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nni_darts_ext import trial
from nni_darts_ext.checkpoints import checkpoint_to_resume
from nni_darts_ext.config import FIELDS, command_line, merge_parameters, parse_options, split_parameters
from nni_darts_ext.errors import ConfigError
from nni_darts_ext.files import write_atomically
from nni_darts_ext.trial import RUN_SETTINGS, search_settings
from nni_darts_ext.variants import VARIANTS, find_variant, variant_name

from .conftest import fake_fashion_mnist, write_idx

NOT_A_NUMBER = 'many'

# parameter -> (wrong type, impossible value, other parameters that the impossible value needs)
BAD_VALUES: dict[str, tuple[object, object | None, dict]] = {
    'variant': (3, 'dartz', {}),
    'seed': (NOT_A_NUMBER, -1, {}),
    'space': (3, 'nope', {}),
    'dataset': (3, 'imagenet', {}),
    'data_dir': (3, '/nonexistent', {'dataset': 'fashion_mnist'}),
    'train_subset': (NOT_A_NUMBER, 0, {}),
    'test_subset': (NOT_A_NUMBER, 0, {}),
    'image_size': (NOT_A_NUMBER, 2, {}),
    'search_subset': (NOT_A_NUMBER, 0, {}),
    'batch_size': (NOT_A_NUMBER, 0, {}),
    'search_epochs': (NOT_A_NUMBER, 0, {}),
    'search_width': (NOT_A_NUMBER, 0, {}),
    'search_cells': (NOT_A_NUMBER, 0, {}),
    'arc_travel': (NOT_A_NUMBER, 0.0, {}),
    'eigenvalue_batches': (NOT_A_NUMBER, -1, {}),
    'early_stop': (3, 'sometimes', {}),
    'learning_rate': (NOT_A_NUMBER, 0.0, {}),
    'min_learning_rate': (NOT_A_NUMBER, -0.1, {}),
    'momentum': (NOT_A_NUMBER, 1.5, {}),
    'weight_decay': (NOT_A_NUMBER, -1.0, {}),
    'retrain_epochs': (NOT_A_NUMBER, -1, {}),
    'retrain_width': (NOT_A_NUMBER, 0, {}),
    'retrain_cells': (NOT_A_NUMBER, 0, {}),
    'retrain_batch_size': (NOT_A_NUMBER, 0, {}),
    'retrain_learning_rate': (NOT_A_NUMBER, -0.1, {}),
    'retrain_gradient_clip': (NOT_A_NUMBER, -1.0, {}),
    'retrain_cutout': (NOT_A_NUMBER, -1, {}),
    'retrain_drop_path': (NOT_A_NUMBER, 1.0, {}),
    'retrain_auxiliary_weight': (NOT_A_NUMBER, -0.4, {}),
    'accelerator': (3, 'tpu', {}),
    'devices': (NOT_A_NUMBER, 0, {}),
    'threads': (NOT_A_NUMBER, 0, {}),
    'num_workers': (NOT_A_NUMBER, -1, {}),
    'nb201_table': (3, '/nonexistent/nb201.csv', {'space': 'nni:NasBench201'}),
    'output_dir': (3, None, {}),  # a path that cannot be a directory: see the test below
    'resume': ('yes', None, {}),  # a switch has no impossible value
    'channels_last': ('fast', None, {}),
}

# variant option -> (wrong type, impossible value); each is tried with the first variant that has it
BAD_OPTIONS: dict[str, tuple[object, object]] = {
    'arc_learning_rate': (NOT_A_NUMBER, 0.0),
    'arc_weight_decay': (NOT_A_NUMBER, -1e-3),
    'gradient_clip_val': (NOT_A_NUMBER, -1.0),
    'warmup_epochs': (NOT_A_NUMBER, -1),
    'k': (NOT_A_NUMBER, 0),
    'products': (3, 'exact'),
    'eta': (NOT_A_NUMBER, -1.0),
    'factor_updates': (3, 'sometimes'),
    'seed': (NOT_A_NUMBER, -1),
    'stages': (3, 'quick'),
    'skip_limit': (NOT_A_NUMBER, -1),
    'skip_dropout_decay': (NOT_A_NUMBER, -0.2),
    'latency_weight': (NOT_A_NUMBER, -0.1),
    'tau_max': (NOT_A_NUMBER, 0.0),
    'tau_min': (NOT_A_NUMBER, -0.1),
    'paths': (3, 'one'),
    'latency_target_ms': (NOT_A_NUMBER, 0.0),
    'latency_predictor': (3, 'mlp'),
    'latency_device': (3, 'tpu'),
    'latency_batch': (NOT_A_NUMBER, 0),
    'latency_warmup': (NOT_A_NUMBER, -1),
    'latency_repeats': (NOT_A_NUMBER, 0),
    'latency_threads': (NOT_A_NUMBER, 0),
    'latency_samples': (NOT_A_NUMBER, 3),
    'latency_cache': (3, '/etc/hostname/latency'),
    'input_shape': ('1x8x8', [1, 0, 8]),
}


def variant_with(option: str) -> str:
    return next(name for name, variant in VARIANTS.items() if option in variant.options)


CASES = [pytest.param(name, wrong, {}, id=f'{name}-type') for name, (wrong, _, _) in BAD_VALUES.items()] + [
    pytest.param(name, impossible, context, id=f'{name}-range')
    for name, (_, impossible, context) in BAD_VALUES.items() if impossible is not None] + [
    pytest.param(option, value, {'variant': variant_with(option)}, id=f'{option}-{kind}')
    for option, values in BAD_OPTIONS.items() for kind, value in zip(('type', 'range'), values)]


def test_every_parameter_and_option_has_bad_values():
    assert set(BAD_VALUES) == set(FIELDS)
    assert set(BAD_OPTIONS) == {option for variant in VARIANTS.values() for option in variant.options}


def tuned_trial(parameters: dict, output_dir, monkeypatch) -> int:
    """Run the trial's entry point with ``parameters`` arriving from NNI's tuner."""
    monkeypatch.setattr(trial.nni, 'get_next_parameter', lambda: parameters)
    return trial.main(['--output-dir', str(output_dir)] if 'output_dir' not in parameters else [])


@pytest.mark.parametrize('name, value, context', CASES)
def test_bad_value_is_one_line_naming_the_parameter(name, value, context, tmp_path, monkeypatch, capsys):
    output_dir = tmp_path / 'out'
    assert tuned_trial({**context, name: value}, output_dir, monkeypatch) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith('error: ')
    named = name if name != 'data_dir' else 'data directory'
    assert named.replace('_', ' ') in errors[0].replace('_', ' ') or repr(value) in errors[0], errors[0]
    assert not output_dir.exists()


def test_an_output_dir_that_is_a_file_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    taken = tmp_path / 'taken'
    taken.write_text('not a directory')
    assert tuned_trial({'output_dir': str(taken / 'run')}, None, monkeypatch) == 2
    assert capsys.readouterr().err.strip() == f'error: output_dir {taken / "run"} cannot be a directory: {taken} is a file'
    assert taken.read_text() == 'not a directory'


def test_a_diverging_search_stops_with_a_clear_message(tmp_path, monkeypatch, capsys):
    parameters = {'train_subset': 128, 'test_subset': 64, 'batch_size': 32, 'search_epochs': 1, 'retrain_epochs': 1,
                  'learning_rate': 1e30, 'min_learning_rate': 0.0}
    assert tuned_trial(parameters, tmp_path / 'out', monkeypatch) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        'error: training diverged: training loss became nan; lower learning_rate')
    assert not (tmp_path / 'out').exists()


def test_a_search_whose_validation_loss_diverges_stops_with_a_clear_message(tmp_path, capsys):
    """At this learning rate the training loss stays finite (about 7e5) but the validation loss, which the
    architecture steps descend, is nan: the trial used to export an architecture from it and exit 0."""
    output_dir = tmp_path / 'out'
    assert trial.main([*TINY, '--search-epochs', '1', '--learning-rate', '1e6', '--output-dir', str(output_dir)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        'error: training diverged: search validation loss became nan; lower learning_rate or arc_learning_rate')
    assert not (output_dir / 'checkpoints' / 'last.ckpt').exists()  # the diverged epoch is not kept to resume from
    assert not (output_dir / 'metrics.json').exists()


@pytest.mark.parametrize('error', [torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB'),
                                   RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"),
                                   MemoryError()])
def test_running_out_of_memory_names_what_lowers_it(error, tmp_path, monkeypatch, capsys):
    def exhausted(*args, **kwargs):
        raise error

    monkeypatch.setattr(trial, 'search', exhausted)
    assert tuned_trial({'train_subset': 128}, tmp_path / 'out', monkeypatch) == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith('error: out of memory (') and 'lower batch_size' in message
    assert not (tmp_path / 'out').exists()


def test_other_runtime_errors_are_not_taken_for_memory(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('mat1 and mat2 shapes cannot be multiplied')

    monkeypatch.setattr(trial, 'search', broken)
    with pytest.raises(RuntimeError, match='shapes'):
        tuned_trial({'train_subset': 128}, tmp_path / 'out', monkeypatch)


def test_numbers_in_scientific_notation_are_numbers():
    """YAML 1.1 (PyYAML) reads 6e-4 as a string; users, and YAML 1.2, read a number."""
    assert parse_options(['arc_learning_rate=6e-4', 'eta=1E30', 'k=4', 'name=6e-4x']) == {
        'arc_learning_rate': 6e-4, 'eta': 1e30, 'k': 4, 'name': '6e-4x'}
    merged = merge_parameters({}, {}, '{darts: {arc_learning_rate: 6e-4}}', {'variant': 'darts'})
    assert merged['arc_learning_rate'] == 6e-4


@pytest.mark.parametrize('arguments, message', [
    (['--option', 'arc_learning_rate=[1,'], "error: --option arc_learning_rate: '[1,' is not valid YAML ("),
    (['--variant-settings', '{darts: {k: 1}, darts: {k: 2}}'], 'error: --variant-settings must map variant names'),
])
def test_malformed_yaml_on_the_command_line_is_one_line(arguments, message, tmp_path, capsys):
    assert trial.main([*arguments, '--output-dir', str(tmp_path / 'out')]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_a_space_file_naming_a_key_twice_is_refused(tmp_path, capsys):
    space = tmp_path / 'twice.yml'
    space.write_text('operations: [conv_3x3, skip_connect]\nnodes: 2\ncells: 3\nwidth: 4\ncells: 5\n')
    assert trial.main(['--space', str(space), '--output-dir', str(tmp_path / 'out')]) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {space}: not valid YAML: duplicate key 'cells'")


FLOAT_FIELDS = [name for name in FIELDS if 'float' in str(FIELDS[name].type)]
FLOAT_OPTIONS = [option for option, (_, impossible) in BAD_OPTIONS.items() if isinstance(impossible, float)]
NOT_FINITE = [float('nan'), float('inf'), float('-inf')]


@pytest.mark.parametrize('value', NOT_FINITE, ids=str)
@pytest.mark.parametrize('name, context', [(name, {}) for name in FLOAT_FIELDS] +
                         [(option, {'variant': variant_with(option)}) for option in FLOAT_OPTIONS])
def test_a_number_that_is_not_finite_is_refused(name, context, value, tmp_path, monkeypatch, capsys):
    assert tuned_trial({**context, name: value}, tmp_path / 'out', monkeypatch) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f'error: {name} must be a ') and 'finite' in errors[0], errors
    assert not (tmp_path / 'out').exists()


def test_float_settings_are_all_tried():
    assert FLOAT_FIELDS == ['arc_travel', 'learning_rate', 'min_learning_rate', 'momentum', 'weight_decay', 'retrain_learning_rate',
                            'retrain_gradient_clip', 'retrain_drop_path', 'retrain_auxiliary_weight']
    assert set(FLOAT_OPTIONS) == {'arc_learning_rate', 'arc_weight_decay', 'gradient_clip_val', 'eta', 'skip_dropout_decay',
                                  'latency_weight', 'latency_target_ms', 'tau_max', 'tau_min'}


SPACE_FILES = {
    'garbage.yml': (bytes(range(128, 256)) * 4, 'not a text file; a model space is a YAML file'),
    'nested.yml': (b'operations: [[skip_connect]]\nnodes: 2\ncells: 2\nwidth: 4\n',
                   "operations must be a list of names, got ['skip_connect'] in it; accepted names: "),
    'list_key.yml': (b'operations: [skip_connect]\n[nodes]: 2\n', 'not valid YAML: while constructing a mapping '),
    # sizes that would build for hours: refused before building
    'many_nodes.yml': (b'operations: [skip_connect]\nnodes: 10000\ncells: 8\nwidth: 4\n',
                       'cells: 8 cells of 50,015,000 candidate operations each make a supernet of 400,120,000, over '
                       'the 50,000 that build in about 15 s; lower cells, nodes or operations'),
    'deep.yml': (b'operations: [skip_connect]\nnodes: 2\ncells: 8\nwidth: 4\nevaluation: {cells: 1000000}\n',
                 'evaluation: cells (1000000) exceeds 100, the deepest network this package builds; accepted: 1 to 100'),
}


@pytest.mark.parametrize('arguments, message', [
    (['--learning-rate', 'nan'], 'error: learning_rate must be a finite number, got nan'),
    (['--option', 'arc_learning_rate=.inf'], 'error: arc_learning_rate must be a positive finite number, got inf'),
    (['--variant-settings', '{stabilized: {eta: .nan}}'],
     'error: --variant-settings: stabilized: eta must be a non-negative finite number, got nan'),
    # every entry is checked, not only the one of the variant this trial runs
    (['--variant-settings', '{pcdarts: {k: 0}}'], 'error: --variant-settings: pcdarts: k must be a positive integer'),
    (['--variant-settings', '{pcdarts: {eta: 0.1}}'],
     "error: --variant-settings: pcdarts: variant 'pcdarts' has no option 'eta'; its options: k, "),
    (['--variant-settings', '{darts: {}, PDARTS: {batch_size: 0}}'],
     'error: --variant-settings: PDARTS: batch_size must be at least 1, got 0'),
    (['--variant-settings', '{pcdarts+pdarts: {learning_rate: 0.01, min_learning_rate: 0.1}}'],
     'error: --variant-settings: pcdarts+pdarts: min_learning_rate (0.1) exceeds learning_rate (0.01)'),
    # a key no Python mapping can hold, a parameter name that is not a string, an entry that would run another variant
    (['--variant-settings', '{[a]: 1}'], "error: --variant-settings must map variant names to mappings of parameters"),
    (['--option', 'arc_learning_rate={[1]: 2}'], "error: --option arc_learning_rate: '{[1]: 2}' is not valid YAML ("),
    (['--variant-settings', '{darts: {1: 2}}'], 'error: --variant-settings: darts: parameter names must be strings, '
     'got 1; accepted: the trial parameters and arc_learning_rate, arc_weight_decay, gradient_clip_val, '
     'warmup_epochs'),
    # one search, two spellings, two entries: which would apply?
    (['--variant-settings', '{pcdarts+stabilized: {eta: 0.01}, stabilized+PCDARTS: {eta: 0.1}}'],
     "error: --variant-settings: 'pcdarts+stabilized' and 'stabilized+PCDARTS' are one variant, pcdarts+stabilized; "
     'give its settings once'),
    (['--variant', 'pcdarts+darts+pcdarts'], "error: variant 'pcdarts+darts+pcdarts': names pcdarts twice; "
     'name each technique once'),
    (['--variant-settings', '{darts: {variant: random}}'],
     'error: --variant-settings: darts: variant cannot be set in an entry for a variant; give variant as a flag or in '
     'the search space'),
    # the auxiliary head's batch norm cannot train on one image a batch
    (['--train-subset', '64', '--test-subset', '16', '--image-size', '32', '--batch-size', '16', '--search-epochs', '1',
      '--retrain-epochs', '1', '--retrain-auxiliary-weight', '0.4', '--retrain-batch-size', '1'],
     'error: retrain_batch_size (batch_size where unset) must be at least 2 with retrain_auxiliary_weight, whose head '
     'normalizes over the batch; got 1'),
    *[(['--space', name], f'error: {{tmp}}/{name}: {message}') for name, (_, message) in SPACE_FILES.items()],
    (['--search-cells', '1000'], 'error: search_cells (1000) exceeds 100, the deepest network this package builds'),
    (['--space', 'nni:NasBench201', '--retrain-cells', '101'], 'error: retrain_cells (101) exceeds 100, '),
    # a file where a folder belongs, for the dataset that downloads into it and the one that reads it
    *[(['--dataset', dataset, '--data-dir', '/etc/passwd'],
       'error: data_dir /etc/passwd cannot be a directory: /etc/passwd is a file')
      for dataset in ('cifar10', 'fashion_mnist')],
    (['--dataset', 'cifar10', '--data-dir', '/proc/nni-darts-ext/cifar'],
     'error: data_dir /proc/nni-darts-ext/cifar cannot be written (it would be created in /proc): '),
])
def test_bad_input_on_the_command_line_is_one_line(arguments, message, tmp_path, capsys):
    for name, (content, _) in SPACE_FILES.items():
        (tmp_path / name).write_bytes(content)
    arguments = [str(tmp_path / argument) if argument in SPACE_FILES else argument for argument in arguments]
    assert trial.main([*arguments, '--output-dir', str(tmp_path / 'out')]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(message.replace('{tmp}', str(tmp_path))), errors
    assert not (tmp_path / 'out').exists()


def test_a_supernet_too_large_to_build_is_refused_naming_the_setting(tmp_path, capsys):
    space = tmp_path / 'hundred_nodes.yml'  # 2 x 100 + 100 x 99 / 2 = 5,150 edges a cell: one cell builds
    space.write_text('operations: [skip_connect]\nnodes: 100\ncells: 1\nwidth: 4\n')
    assert trial.main(['--space', str(space), '--search-cells', '10', '--output-dir', str(tmp_path / 'out')]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'error: search_cells: 10 cells of 5,150 candidate operations each make a supernet of 51,500, over the 50,000 '
        'that build in about 15 s; lower cells, nodes or operations']


@pytest.mark.parametrize('parameters, gpus, message', [
    ({'accelerator': 'gpu'}, 0, "error: accelerator 'gpu': no CUDA GPU is available here; accepted here: auto, cpu"),
    ({'accelerator': 'cuda'}, 0, "error: accelerator 'cuda': no CUDA GPU is available here; accepted here: auto, cpu"),
    ({'accelerator': 'gpu', 'devices': 2}, 1,
     'error: devices (2) exceeds the 1 CUDA GPU available here; accepted: 1 to 1, or accelerator cpu'),
    ({'devices': 3}, 2,
     'error: devices (3) exceeds the 2 CUDA GPUs available here; accepted: 1 to 2, or accelerator cpu'),
])
def test_gpus_that_are_not_there_are_refused_before_any_work(parameters, gpus, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: gpus)
    assert tuned_trial(parameters, tmp_path / 'out', monkeypatch) == 2
    assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('damage', ['truncated', 'gzip truncated', 'labels short', 'label 10', 'no images'])
def test_damaged_fashion_mnist_files_are_named(damage, tmp_path, monkeypatch, capsys):
    compress = damage == 'gzip truncated'
    fake_fashion_mnist(tmp_path, compress)
    stem = 'train-labels-idx1-ubyte' if damage in ('labels short', 'label 10') else 'train-images-idx3-ubyte'
    damaged = tmp_path / (stem + ('.gz' if compress else ''))
    if damage == 'labels short':  # a whole file, of fewer labels than there are images
        write_idx(damaged, np.zeros(39, dtype=np.uint8), compress=False)
    elif damage == 'label 10':  # a class Fashion-MNIST does not have
        write_idx(damaged, np.arange(40, dtype=np.uint8) % 11, compress=False)
    elif damage == 'no images':  # whole files, of no images and no labels
        write_idx(damaged, np.zeros((0, 28, 28), dtype=np.uint8), compress=False)
        write_idx(tmp_path / 'train-labels-idx1-ubyte', np.zeros(0, dtype=np.uint8), compress=False)
    else:
        damaged.write_bytes(damaged.read_bytes()[:-100])
    assert tuned_trial({'dataset': 'fashion_mnist', 'data_dir': str(tmp_path)}, tmp_path / 'out', monkeypatch) == 2
    expected = {'truncated': f'error: {damaged}: truncated or damaged idx file: 31276 bytes where its shape 40x28x28 '
                             'needs 31376; download it again',
                'gzip truncated': f'error: {damaged}: truncated or damaged gzip file (',
                'labels short': f'error: fashion_mnist: {tmp_path} holds 40 train images but 39 labels; ',
                'label 10': f"error: {damaged}: holds label 10; Fashion-MNIST's labels are 0 to 9: download it again",
                'no images': f'error: {damaged}: holds no images; download it again'}[damage]
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(expected), errors


SMALL_RETRAINING = ['--train-subset', '64', '--test-subset', '32', '--batch-size', '32', '--retrain-epochs', '1',
                    '--retrain-width', '4', '--retrain-cells', '2']


def test_a_variant_name_is_reported_as_the_registry_spells_it(tmp_path, monkeypatch, capsys):
    assert variant_name(' PCDARTS + stabilized ') == 'pcdarts+stabilized'
    assert find_variant(' PCDARTS + stabilized ').name == 'pcdarts+stabilized'
    settings = "{' Random ': {retrain_epochs: 1}}"  # applies to ' random', spelled another way
    monkeypatch.setattr(trial.nni, 'get_next_parameter', lambda: {'variant': ' random'})
    assert trial.main([*SMALL_RETRAINING, '--retrain-epochs', '3', '--variant-settings', settings,
                       '--output-dir', str(tmp_path / 'out')]) == 0
    final = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert final['variant'] == 'random'
    assert json.loads((tmp_path / 'out' / 'arch.json').read_text())['variant'] == 'random'
    epochs = json.loads((tmp_path / 'out' / 'metrics.json').read_text())['epochs']
    assert [e['phase'] for e in epochs] == ['retrain']


def test_a_diverging_retraining_names_the_retraining_learning_rate(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(trial.nni, 'get_next_parameter', lambda: {'retrain_learning_rate': 1e30,
                                                                  'retrain_gradient_clip': 0.0})
    assert trial.main([*SMALL_RETRAINING, '--variant', 'random', '--output-dir', str(tmp_path / 'out')]) == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith('error: training diverged: training loss became ') and \
        message.endswith('; lower retrain_learning_rate'), message


def test_files_left_half_written_are_removed_on_the_next_start(tmp_path, monkeypatch, capsys):
    output_dir = tmp_path / 'out'
    (output_dir / 'checkpoints').mkdir(parents=True)
    # above any process id Linux hands out (at most 2**22): no process is writing these
    killed = [output_dir / '.partial-999999999-metrics.json',
              output_dir / 'checkpoints' / '.partial-999999999-last.ckpt']
    running = output_dir / f'.partial-{os.getpid()}-arch.json'  # a writer still at work keeps its file
    for path in (*killed, running):
        path.write_text('half')
    assert tuned_trial({'space': 'nope'}, output_dir, monkeypatch) == 2
    assert not any(path.exists() for path in killed) and running.exists()
    errors = capsys.readouterr().err
    assert all(f'removed {path}, left by a write that was interrupted' in errors for path in killed)


def test_a_failed_write_leaves_no_half_written_file_and_names_the_file(tmp_path):
    def failing(path):
        path.write_text('half')
        raise OSError(errno.ENOSPC, 'No space left on device')  # as a failed write() raises it: no file named

    with pytest.raises(OSError, match='No space') as info:
        write_atomically(tmp_path / 'metrics.json', failing)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / 'metrics.json')
    assert list(tmp_path.iterdir()) == []


TINY = ['--train-subset', '64', '--test-subset', '32', '--batch-size', '16', '--search-epochs', '2',
        '--retrain-epochs', '1', '--search-width', '4', '--search-cells', '2', '--retrain-width', '4',
        '--retrain-cells', '2', '--accelerator', 'cpu']


@pytest.fixture(scope='module')
def searched(tmp_path_factory) -> Path:
    """The output directory of a whole tiny search of 2 epochs: ``checkpoints/last.ckpt`` and the epoch before's."""
    output_dir = tmp_path_factory.mktemp('searched') / 'out'
    assert trial.main([*TINY, '--output-dir', str(output_dir)]) == 0
    return output_dir


def resumed_copy(searched: Path, tmp_path: Path, damage: dict[str, bytes | None]) -> Path:
    """A copy of ``searched`` with each named checkpoint replaced by the given bytes (removed for ``None``)."""
    output_dir = tmp_path / 'out'
    shutil.copytree(searched, output_dir)
    for name, content in damage.items():
        path = output_dir / 'checkpoints' / name
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content(path.read_bytes()))
    return output_dir


def truncated(data: bytes) -> bytes:
    return data[:len(data) // 2]


def empty(data: bytes) -> bytes:
    return b''


def garbage(data: bytes) -> bytes:
    return bytes(range(256)) * 8


@pytest.mark.parametrize('damage', [truncated, empty, garbage])
def test_resuming_from_a_damaged_checkpoint_names_it(damage, searched, tmp_path, capsys):
    output_dir = resumed_copy(searched, tmp_path, {'last.ckpt': damage, 'last.previous.ckpt': None})
    capsys.readouterr()
    assert trial.main([*TINY, '--output-dir', str(output_dir), '--resume', 'true']) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    last = output_dir / 'checkpoints' / 'last.ckpt'
    assert errors[-1].startswith(f'error: resume: {last} (') and errors[-1].endswith(
        ') is not a checkpoint; delete it to restart the search from scratch'), errors
    assert not any('Traceback' in line for line in errors) and sum(e.startswith('error:') for e in errors) == 1


def test_resuming_from_two_damaged_checkpoints_names_both(searched, tmp_path, capsys):
    output_dir = resumed_copy(searched, tmp_path, {'last.ckpt': empty, 'last.previous.ckpt': truncated})
    capsys.readouterr()
    assert trial.main([*TINY, '--output-dir', str(output_dir), '--resume', 'true']) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith(f'error: resume: {output_dir / "checkpoints" / "last.ckpt"} (EOFError') and \
        f' and {output_dir / "checkpoints" / "last.previous.ckpt"} (' in message and \
        message.endswith(') are not checkpoints; delete them to restart the search from scratch'), message


def test_a_damaged_checkpoint_falls_back_to_the_epoch_before(searched, tmp_path, capsys):
    output_dir = resumed_copy(searched, tmp_path, {'last.ckpt': truncated})
    capsys.readouterr()
    assert trial.main([*TINY, '--output-dir', str(output_dir), '--resume', 'true']) == 0
    errors = capsys.readouterr().err
    assert f'{output_dir / "checkpoints" / "last.ckpt"} (' in errors and \
        f'is unreadable: resuming from {output_dir / "checkpoints" / "last.previous.ckpt"}, the epoch before' in errors
    metrics = json.loads((output_dir / 'metrics.json').read_text())
    # the epoch before's records, then the last epoch again: the same architecture as the search never resumed
    assert [e['epoch'] for e in metrics['epochs'] if e['phase'] == 'search'] == [1, 2]
    assert json.loads((output_dir / 'arch.json').read_text()) == json.loads((searched / 'arch.json').read_text())


@pytest.mark.parametrize('arguments, message', [
    (['--learning-rate', '0.05'],
     'learning_rate is 0.05, but the search that saved {last} ran with learning_rate 0.025'),
    (['--option', 'arc_learning_rate=0.001'],
     'arc_learning_rate is 0.001, but the search that saved {last} ran with arc_learning_rate 0.0003'),
    (['--variant', 'stabilized'], "variant is 'stabilized', but the search that saved {last} ran with variant 'darts'"),
    (['--variant', 'pcdarts', '--option', 'warmup_epochs=0'],
     "variant is 'pcdarts', but the search that saved {last} ran with variant 'darts'"),
])
def test_resuming_with_other_settings_names_the_one_that_differs(arguments, message, searched, tmp_path, capsys):
    output_dir = resumed_copy(searched, tmp_path, {})
    capsys.readouterr()
    assert trial.main([*TINY, *arguments, '--output-dir', str(output_dir), '--resume', 'true']) == 2
    last = output_dir / 'checkpoints' / 'last.ckpt'
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f'error: resume: {message.format(last=last)}; resume with that, or start afresh without resume or in '
        'another output_dir')


def search_settings_of(arguments: list[str]) -> dict:
    flags = vars(command_line().parse_args(arguments))
    options = parse_options(flags.pop('option'))
    flags.pop('variant_settings')
    return search_settings(*split_parameters({**flags, **options}))


def test_resuming_may_change_where_it_runs_and_the_retraining(searched):
    assert set(RUN_SETTINGS) < set(FIELDS)
    last = searched / 'checkpoints' / 'last.ckpt'
    changed = ['--retrain-epochs', '2', '--retrain-learning-rate', '0.1', '--test-subset', '16', '--num-workers', '1',
               '--accelerator', 'auto', '--threads', '1']
    assert checkpoint_to_resume(last.parent, search_settings_of([*TINY, *changed])) == last
    with pytest.raises(ConfigError, match='^resume: search_width is 8, but the search that saved .* ran with '
                                          'search_width 4;'):
        checkpoint_to_resume(last.parent, search_settings_of([*TINY, '--search-width', '8']))
    with pytest.raises(ConfigError, match='^resume: k is 2, but the search that saved .* ran with no k;'):
        checkpoint_to_resume(last.parent, {**search_settings_of(TINY), 'k': 2})
