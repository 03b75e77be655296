from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from nni_darts_ext import VARIANTS, architecture, epoch_reporter, trial
from nni_darts_ext.board import TrialBoard
from nni_darts_ext.config import merge_parameters, split_parameters
from nni_darts_ext.spaces import load_space

from .conftest import COMPOSED, cpu_settings
from .test_resume import TIMINGS


@pytest.fixture
def nni_channel(monkeypatch):
    """Pretend to run under nnictl and capture what the trial reports."""
    sent = {'intermediate': [], 'final': []}
    monkeypatch.setattr(epoch_reporter, 'under_nni', lambda: True)
    monkeypatch.setattr(trial, 'under_nni', lambda: True)
    monkeypatch.setattr(epoch_reporter.nni, 'report_intermediate_result', sent['intermediate'].append)
    monkeypatch.setattr(trial.nni, 'report_final_result', sent['final'].append)
    return sent


@pytest.mark.parametrize('variant', [*sorted(VARIANTS), *COMPOSED])
def test_each_variant_searches_exports_and_retrains(variant, quick_parameters, tmp_path, nni_channel):
    config, options = split_parameters({**quick_parameters, **cpu_settings(variant), 'variant': variant})
    final = trial.run(config, options, tmp_path)

    found = json.loads((tmp_path / 'arch.json').read_text())['architecture']
    space = load_space(config.space, 1, 10, 8)
    assert set(found) == set(space.search_space().simplify())
    model = space.evaluation_model(found)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert (tmp_path / 'normal.png').stat().st_size > 0 and (tmp_path / 'reduce.png').stat().st_size > 0

    members = variant.split('+')
    search_epochs = 0 if variant == 'random' else 2 if 'pdarts' in members else 1  # P-DARTS: two one-epoch stages
    phases = [r['phase'] for r in nni_channel['intermediate']]
    assert phases == ['search'] * search_epochs + ['retrain']
    for record in nni_channel['intermediate']:
        assert 0 <= record['default'] <= 1
        if record['phase'] == 'search':
            assert {'arch_entropy', 'skip_connects', 'parameter_free'} <= set(record)
    assert nni_channel['final'] == [final]
    variant_keys = {'pdarts': {'stage_s'},
                    'ladarts': {'predicted_latency_ms', 'measured_latency_ms', 'lookup_error_pct', 'network_error_pct',
                                'latency_device'}}
    search_keys = set() if variant == 'random' else {'arc_learning_rate', 'normalized_entropy', 'converged'}
    assert set(final) == {'default', 'variant', 'seed', 'search_s', 'retrain_s', 'params', 'latency_ms',
                          'skip_connects', 'parameter_free', 'none_edges', 'arch', 'unconstrained_arch', 'stopped_early'} | search_keys | set().union(
                              *(variant_keys.get(m, set()) for m in members))
    if search_keys:
        last_search = [r for r in nni_channel['intermediate'] if r['phase'] == 'search'][-1]
        assert final['normalized_entropy'] == round(last_search['normalized_entropy'], 4)
        assert final['converged'] == (last_search['normalized_entropy'] <= 0.95)
    assert final['latency_ms'] > 0
    assert final['stopped_early'] == ''
    assert final['variant'] == variant and final['params'] == sum(p.numel() for p in model.parameters())
    assert final['arch'] == architecture.describe(found)
    assert (final['parameter_free'], final['none_edges']) == (architecture.parameter_free(found),
                                                              architecture.none_edges(found))
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert metrics['final'] == final and metrics['epochs'] == nni_channel['intermediate']


def test_the_same_seed_in_two_fresh_processes_gives_the_same_trial(quick_parameters, tmp_path):
    """Two trials started afresh (hash seeds, caches, thread pools of their own), at the same time, give the same
    per-epoch records and the same final result but for its measured times."""
    flags = [f'--{k.replace("_", "-")}={v}' for k, v in quick_parameters.items()]
    processes = {name: subprocess.Popen([sys.executable, '-m', 'nni_darts_ext.trial', *flags, '--threads', '1',
                                         '--output-dir', str(tmp_path / name)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for name in ('a', 'b')}
    for process in processes.values():
        errors = process.communicate(timeout=300)[1]
        assert process.returncode == 0, errors[-3000:]

    def outcome(name: str) -> tuple:
        metrics = json.loads((tmp_path / name / 'metrics.json').read_text())
        return metrics['epochs'], {key: value for key, value in metrics['final'].items() if key not in TIMINGS}

    assert outcome('a') == outcome('b')
    assert [record['phase'] for record in outcome('a')[0]] == ['search', 'retrain']


def test_the_retraining_does_not_depend_on_what_the_search_drew(quick_parameters, tmp_path, monkeypatch):
    """The same architecture and seed retrain to the same network, however many random numbers the search
    drew before it (a longer search, or one resumed from its checkpoint, leaves another random state)."""
    config, options = split_parameters({**quick_parameters, 'variant': 'random', 'retrain_width': 4,
                                        'retrain_cells': 3})
    search, retrain = trial.search, trial.retrain
    retrained = []

    def retrain_kept(model, *args):
        accuracy = retrain(model, *args)
        retrained.append(model.state_dict())
        return accuracy

    def search_drawing(draws: int):
        def searched(*args):
            found = search(*args)
            torch.rand(draws)
            return found
        return searched

    monkeypatch.setattr(trial, 'retrain', retrain_kept)
    finals = []
    for draws in (0, 1000):
        monkeypatch.setattr(trial, 'search', search_drawing(draws))
        finals.append(trial.run(config, options, tmp_path / str(draws)))
    assert finals[0]['arch'] == finals[1]['arch'] and finals[0]['default'] == finals[1]['default']
    first, second = retrained
    assert first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)


def test_each_retraining_epoch_reports_the_accuracy_of_the_network_after_it(quick_parameters, tmp_path):
    """After one epoch at the full learning rate BatchNorm's running averages still describe the initial
    network, whose test accuracy in eval mode read chance (0.05 here); with the statistics estimated over the
    training split, the first epoch's record is the trained network's accuracy, the model's own computed
    afresh."""
    config, options = split_parameters({**quick_parameters, 'variant': 'random'})
    strategy, data, space, search_size, evaluation_size = trial.prepare(config, options)
    model = space.evaluation_model(strategy.sample(space.search_space(search_size)), evaluation_size)
    records = []
    accuracy = trial.retrain(model, data, config, records, TrialBoard(tmp_path))

    images, labels = next(iter(torch.utils.data.DataLoader(data.test, batch_size=len(data.test))))
    with torch.no_grad():
        predicted = model.eval()(images).argmax(dim=1)
    assert [(r['phase'], r['default']) for r in records] == [('retrain', accuracy)]
    assert accuracy == pytest.approx(float((predicted == labels).float().mean()), abs=1e-6)
    assert accuracy > 0.4  # chance: 0.1


def run_trial(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'nni_darts_ext.trial', *arguments], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize('arguments, message', [
    (['--variant', 'dartz'], "error: unknown variant 'dartz'; accepted: " + ', '.join(sorted(VARIANTS))),
    (['--space', 'nope'], "error: no model space 'nope'"),
    (['--dataset', 'fashion_mnist', '--data-dir', '/nonexistent'], 'error: fashion_mnist: data directory /nonexistent does not exist'),
    (['--option', 'k=4'], "error: variant 'darts' has no option 'k'; its options: "),
    (['--option', 'k'], "error: --option expects KEY=VALUE, got 'k'"),
    (['--variant-settings', '[1, 2]'], 'error: --variant-settings must map variant names to mappings'),
    (['--variant-settings', '{pcdart: {k: 2}}'], "error: --variant-settings: unknown variant 'pcdart'; accepted: "),
    (['--variant', 'pcdarts'], 'error: warmup_epochs (15) must be below search_epochs (4)'),
    (['--variant', 'pcdarts', '--option', 'k=3', '--option', 'warmup_epochs=0'],
     'error: normal/2_0/max_pool_3x3: BatchNorm2d has 4 channels, not divisible by k=3'),
    (['--batch-size', '0'], 'error: batch_size must be at least 1, got 0'),
    (['--momentum', '1.5'], 'error: momentum must be in [0, 1), got 1.5'),
    (['--accelerator', 'tpu'], "error: unknown accelerator 'tpu'; accepted: auto, cpu, cuda, gpu"),
    (['--image-size', '2'], 'cells reduce a 2x2 image below one pixel'),
    (['--train-subset', '100'], 'error: batch_size (64) exceeds the search split (50 images)'),
])
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(arguments, message, tmp_path, capsys):
    assert trial.main([*arguments, '--output-dir', str(tmp_path / 'out')]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and message in errors[0]
    assert not (tmp_path / 'out').exists()


def test_wrong_flag_type_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as info:
        trial.main(['--learning-rate', 'fast'])
    assert info.value.code == 2
    assert "learning_rate must be of type float, got 'fast'" in capsys.readouterr().err


def test_bad_yaml_space_fails_the_trial(tmp_path):
    space = tmp_path / 'space.yml'
    space.write_text('operations: [skip_connect, conv_9x9]\nnodes: 2\ncells: 3\nwidth: 4\n')
    result = run_trial('--space', str(space))  # a real process: NNI marks a trial FAILED by its exit code
    assert result.returncode == 2
    assert f"error: {space}: unknown operation 'conv_9x9'; accepted: " in result.stderr


def test_standalone_trial_writes_its_outputs(tmp_path, quick_parameters):
    flags = [f'--{k.replace("_", "-")}={v}' for k, v in quick_parameters.items()]
    result = run_trial(*flags, '--variant', 'random', '--output-dir', str(tmp_path))
    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final['variant'] == 'random'
    assert {'arch.json', 'metrics.json', 'normal.png', 'reduce.png'} <= {p.name for p in tmp_path.iterdir()}


def test_variant_settings_apply_to_their_variant_only():
    flags = {'variant': 'darts', 'batch_size': 32}
    settings = '{pcdarts: {k: 2, batch_size: 256}}'
    assert merge_parameters(flags, {}, settings, {}) == flags
    merged = merge_parameters(flags, {}, settings, {'variant': 'pcdarts', 'seed': 1})
    assert merged == {'variant': 'pcdarts', 'batch_size': 256, 'k': 2, 'seed': 1}
    # the tuner has the last word
    assert merge_parameters(flags, {}, settings, {'variant': 'pcdarts', 'batch_size': 8})['batch_size'] == 8
