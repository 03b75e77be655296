"""Reference samples (percentiles by their rule, files that fail clearly), the benchmark tool that
builds them, and the trial's side: a trial of a sample's protocol retrains exactly as the sample
did and reports its standing; ``arc_travel`` sets the architecture learning rate from the budget."""

from __future__ import annotations

import fcntl
import json
import sys
from pathlib import Path

import pytest
import torch

from nni_darts_ext import reference_sample, trial
from nni_darts_ext.config import split_parameters
from nni_darts_ext.errors import ConfigError
from nni_darts_ext.reference_sample import PROTOCOL_SETTINGS, ReferenceSample, matching_sample
from nni_darts_ext.strategies.pdarts import PDARTS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'benchmarks'))
import reference_sample as tool  # noqa: E402  (benchmarks/reference_sample.py)

TINY_PROTOCOL = {'dataset': 'digits', 'train_subset': 256, 'test_subset': 128, 'retrain_epochs': 1,
                 'retrain_width': 4, 'retrain_cells': 2, 'retrain_batch_size': 32}
"""A protocol of seconds per architecture: darts_small at 4 channels, 2 cells, on a slice of digits."""


def toy_sample(scores: dict[str, float], draws: list[str]) -> ReferenceSample:
    sample = ReferenceSample('toy', {name: None for name in PROTOCOL_SETTINGS}, seeds=[0, 1], draws=draws)
    for key, score in scores.items():
        sample.record(key, {}, 0, score - 0.01, 1.0)
        sample.record(key, {}, 1, score + 0.01, 1.0)
    return sample


def test_percentile_counts_the_draws_scoring_below_ties_half():
    sample = toy_sample({'a': 0.5, 'b': 0.6, 'c': 0.7, 'found': 0.65}, draws=['a', 'b', 'c', 'c'])
    assert sample.score('b') == pytest.approx(0.6)
    assert sample.drawn_scores() == pytest.approx([0.5, 0.6, 0.7, 0.7])  # a repeated draw counts again
    assert sample.percentile('found') == pytest.approx(50.0)  # above a and b of 4 draws
    assert sample.percentile('c') == pytest.approx(100 * (2 + 0.5 * 2) / 4)
    assert sample.percentile('a') == pytest.approx(12.5)
    assert sample.percentile('never evaluated') is None


def test_a_score_needs_every_seed_and_unscored_draws_do_not_count():
    sample = toy_sample({'a': 0.5, 'b': 0.6}, draws=['a', 'b', 'half'])
    sample.record('half', {}, 0, 0.9, 1.0)
    assert sample.score('half') is None
    assert sample.drawn_scores() == pytest.approx([0.5, 0.6])
    assert sample.percentile('b') == pytest.approx(75.0)


def test_a_corrupt_or_incomplete_sample_file_is_one_clear_error(tmp_path):
    path = tmp_path / 'broken.json'
    path.write_text('{"name": "broken", "protoc')
    with pytest.raises(ConfigError, match=f'reference sample {path} cannot be read .*benchmarks/reference_sample.py'):
        ReferenceSample.load(path)
    path.write_text(json.dumps({'name': 'broken', 'protocol': {'dataset': 'digits'}, 'seeds': [0]}))
    with pytest.raises(ConfigError, match="'broken': its protocol lacks image_size, space, "):
        ReferenceSample.load(path)


def test_saved_samples_load_as_they_were_and_half_written_files_are_ignored(tmp_path):
    sample = toy_sample({'a': 0.5}, draws=['a'])
    sample.protocol = {**sample.protocol, 'dataset': 'digits'}
    sample.save(tmp_path / 'toy.json')
    (tmp_path / '.partial-1-other.json').write_text('{')
    [loaded] = reference_sample.shipped_samples(tmp_path)
    assert loaded == sample
    assert matching_sample(split_parameters({'dataset': 'digits'})[0], tmp_path) is None  # other settings differ
    settings = type('Settings', (), dict(sample.protocol))
    assert matching_sample(settings, tmp_path) == sample


def test_the_shipped_sample_follows_the_benchmark_s_protocol():
    [sample] = reference_sample.shipped_samples()
    assert sample.name == 'nasbench201_fashion_mnist_16' and sample.seeds == [0, 1]
    assert (sample.protocol['space'], sample.protocol['dataset'], sample.protocol['image_size']) == \
        ('nni:NasBench201', 'fashion_mnist', 16)
    assert all(key in sample.architectures for key in sample.draws)
    assert all(0 <= accuracy <= 1 for entry in sample.architectures.values() for accuracy in entry['accuracy'].values())


@pytest.fixture(scope='module')
def tiny_sample(tmp_path_factory) -> tuple[Path, ReferenceSample]:
    """Three draws of darts_small scored at seeds 0 and 1 by the tool, in a folder of their own."""
    directory = tmp_path_factory.mktemp('samples')
    settings = [f'--setting={name}={value}' for name, value in TINY_PROTOCOL.items()]
    threads = torch.get_num_threads()
    assert tool.main(['draw', '--directory', str(directory), '--sample', 'tiny', '--count', '3', *settings]) == 0
    torch.set_num_threads(threads)  # the tool evaluates on one thread
    return directory, ReferenceSample.load(directory / 'tiny.json')


def test_the_tool_draws_uniform_architectures_and_scores_each_at_every_seed(tiny_sample):
    directory, sample = tiny_sample
    assert sample.protocol == {**{name: getattr(split_parameters({})[0], name) for name in PROTOCOL_SETTINGS},
                               **TINY_PROTOCOL}
    assert len(sample.draws) == 3 and len(set(sample.draws)) == 3
    for index, key in enumerate(sample.draws):
        drawn = tool.draw_architecture(sample.protocol, index)
        assert sample.architectures[key]['architecture'] == json.loads(json.dumps(drawn))
        assert set(sample.architectures[key]['accuracy']) == {'0', '1'}
    # run again: nothing left to evaluate, the file is unchanged
    before = (directory / 'tiny.json').read_text()
    assert tool.main(['draw', '--directory', str(directory), '--sample', 'tiny', '--count', '3']) == 0
    assert (directory / 'tiny.json').read_text() == before


def test_a_trial_of_the_protocol_retrains_as_the_sample_did_and_reports_its_percentile(tiny_sample, tmp_path,
                                                                                       monkeypatch):
    directory, sample = tiny_sample
    monkeypatch.setattr(reference_sample, 'SAMPLES_DIR', directory)
    # random at seed 0 draws the sample's draw 0 (the search size is the evaluation size) and retrains it at seed 0
    config, options = split_parameters({**TINY_PROTOCOL, 'variant': 'random', 'seed': 0, 'search_width': 4,
                                        'search_cells': 2, 'accelerator': 'cpu', 'threads': 1})
    final = trial.run(config, options, tmp_path)
    assert final['arch'] == sample.draws[0]
    assert final['default'] == sample.accuracy(sample.draws[0], 0)
    assert final['reference'] == 'tiny' and final['percentile'] == round(sample.percentile(sample.draws[0]), 1)


def test_added_architectures_are_scored_but_never_count_as_draws(tiny_sample, tmp_path):
    directory, sample = tiny_sample
    found = json.loads(json.dumps(tool.draw_architecture(sample.protocol, 7)))
    arch_file = tmp_path / 'arch.json'
    arch_file.write_text(json.dumps({'architecture': found}))
    copy = tmp_path / 'samples'
    copy.mkdir()
    sample.save(copy / 'tiny.json')
    assert tool.main(['add', '--directory', str(copy), '--sample', 'tiny', '--arch-file', str(arch_file)]) == 0
    extended = ReferenceSample.load(copy / 'tiny.json')
    assert extended.draws == sample.draws and extended.drawn_scores() == sample.drawn_scores()
    key = next(key for key in extended.architectures if key not in sample.architectures)
    assert extended.score(key) is not None and extended.percentile(key) is not None


def test_fidelity_retrains_longer_and_ranks_by_kendall_tau(tiny_sample, tmp_path, capsys):
    directory, sample = tiny_sample
    sample.save(tmp_path / 'tiny.json')
    assert tool.main(['fidelity', '--directory', str(tmp_path), '--sample', 'tiny', '--count', '3',
                      '--factor', '2']) == 0
    checked = ReferenceSample.load(tmp_path / 'tiny.json')
    assert checked.fidelity['retrain_epochs'] == 2 and set(checked.fidelity['accuracy']) == set(sample.draws)
    same_seed, mean, count = tool.rank_fidelity(checked)
    assert count == 3 and -1 <= same_seed <= 1 and -1 <= mean <= 1
    assert 'Kendall tau between 2 and 1 epochs over 3 architectures' in capsys.readouterr().out
    assert tool.main(['fidelity', '--directory', str(tmp_path), '--sample', 'tiny', '--factor', '3']) == 2
    assert 'error: the sample\'s fidelity check retrains 2 epochs; --factor 3 asks for 3' in capsys.readouterr().err


def test_a_second_command_on_a_sample_in_use_stops_with_an_error(tiny_sample, tmp_path, capsys):
    directory, sample = tiny_sample
    sample.save(tmp_path / 'tiny.json')
    with open(tmp_path / '.tiny.json.lock', 'w') as held:  # as another process extending it holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        assert tool.main(['draw', '--directory', str(tmp_path), '--sample', 'tiny', '--count', '4']) == 2
    assert capsys.readouterr().err.strip() == ('error: sample tiny is being extended by another command; run one '
                                               'command at a time on a sample')
    assert ReferenceSample.load(tmp_path / 'tiny.json') == sample
    assert tool.main(['show', '--directory', str(tmp_path), '--sample', 'tiny']) == 0


def test_the_tool_refuses_unknown_protocol_settings(tmp_path, capsys):
    assert tool.main(['draw', '--directory', str(tmp_path), '--sample', 'new', '--setting', 'search_epochs=3']) == 2
    assert capsys.readouterr().err.startswith('error: search_epochs is not a protocol setting; accepted: dataset,')


def prepared(parameters: dict) -> object:
    config, options = split_parameters({'dataset': 'digits', 'train_subset': 256, 'search_subset': 256,
                                        'batch_size': 32, 'accelerator': 'cpu', **parameters})
    return trial.prepare(config, options)[0]


def test_arc_travel_divides_by_the_architecture_steps():
    # 128 images a half, batch 32: 4 steps an epoch; pcdarts: 3 epochs after 1 of warm-up
    strategy = prepared({'variant': 'pcdarts', 'search_epochs': 4, 'arc_travel': 1.2, 'warmup_epochs': 1})
    assert strategy.arc_learning_rate == pytest.approx(1.2 / (3 * 4))
    module = strategy.configure_oneshot_module(trial.ClassifierModule(0.1, 0.01, 0.9, 0.0))
    assert module.arc_learning_rate == strategy.arc_learning_rate
    # P-DARTS: the stages' epochs after their warm-ups, 1 + 2
    strategy = prepared({'variant': 'pdarts', 'arc_travel': 1.2, 'stages': [[3, None, 2, 1, 0.0], [4, 3, 3, 1, 0.4]]})
    assert isinstance(strategy, PDARTS) and strategy.arc_learning_rate == pytest.approx(1.2 / (3 * 4))
    assert prepared({'variant': 'darts'}).arc_learning_rate == 3e-4  # unset: the variant's own


@pytest.mark.parametrize('parameters, message', [
    ({'variant': 'darts', 'arc_travel': 10, 'arc_learning_rate': 0.01}, 'set arc_travel or arc_learning_rate, not both'),
    ({'variant': 'darts', 'arc_travel': 0}, 'arc_travel must be positive'),
    ({'variant': 'darts', 'arc_travel': float('nan')}, 'arc_travel must be a finite number'),
])
def test_arc_travel_refuses_what_it_cannot_do(parameters, message):
    with pytest.raises(ConfigError, match=message):
        prepared(parameters)
