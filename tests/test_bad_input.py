"""Every trial parameter and variant option, fed a wrong type and an impossible value, the way NNI's
tuner would send it.

Each must stop the trial before any work with one line that names the parameter, exit status
2 (NNI marks the trial FAILED), and no output directory.
"""

from __future__ import annotations

import pytest
import torch

from nni_darts_ext import trial
from nni_darts_ext.config import FIELDS, merge_parameters, parse_options
from nni_darts_ext.variants import VARIANTS

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
    'eigenvalue_batches': (NOT_A_NUMBER, -1, {}),
    'early_stop': (3, 'sometimes', {}),
    'learning_rate': (NOT_A_NUMBER, 0.0, {}),
    'min_learning_rate': (NOT_A_NUMBER, -0.1, {}),
    'momentum': (NOT_A_NUMBER, 1.5, {}),
    'weight_decay': (NOT_A_NUMBER, -1.0, {}),
    'retrain_epochs': (NOT_A_NUMBER, 0, {}),
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
    'output_dir': (3, None, {}),  # a path that cannot be a directory: see the test below
    'resume': ('yes', None, {}),  # a switch has no impossible value
}

# variant option -> (wrong type, impossible value); each is tried with the first variant that has it
BAD_OPTIONS: dict[str, tuple[object, object]] = {
    'arc_learning_rate': (NOT_A_NUMBER, 0.0),
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
