"""LA-DARTS: measuring, caching, predicting latency, and the latency term inside a real search."""

from __future__ import annotations

import json
import logging
import random

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from nni.mutable import Categorical
from nni.nas.evaluator.pytorch import Classification, DataLoader
from nni.nas.hub.pytorch import ProxylessNAS
from nni.nas.nn.pytorch import Cell, LayerChoice, ModelSpace, MutableConv2d
from nni.nas.oneshot.pytorch.strategy import DARTS

from nni_darts_ext import ConfigError, DifferentiableSearch, LatencyAwareDARTS, make_strategy, trial
from nni_darts_ext.config import split_parameters
from nni_darts_ext.latency import measurement
from nni_darts_ext.latency import profile as profile_module
from nni_darts_ext.latency.cache import LatencyCache
from nni_darts_ext.latency.encoding import ZERO, Encoding
from nni_darts_ext.latency.predictor import LookupTable
from nni_darts_ext.latency.measurement import Timed, TimingSettings, describe_device, measure, resolve_device
from nni_darts_ext.latency.profile import profile_space
from nni_darts_ext.spaces import load_space
from nni_darts_ext.strategies import ladarts
from nni_darts_ext.strategies.ladarts import LatencyLoss
from nni_darts_ext.nni_internals import ALPHA

from .test_stabilized import searched_alphas
from .user_spaces import USER_SPACES, DictChoices, InputChoices, Nested, Repeated, part, search_once, tiny_evaluator

QUICK_START = load_space('darts_small', 1, 10, 8)
INPUT_SHAPE = (1, 8, 8)


def deployed_space():
    """The quick-start space at its evaluation size: what the trial retrains and LA-DARTS times."""
    return QUICK_START.build(QUICK_START.evaluation, True)


def leaves(module: torch.nn.Module) -> list[torch.nn.Module]:
    return [inner for inner in module.modules() if next(inner.children(), None) is None]


def synthetic_ms(module: torch.nn.Module) -> float:
    """A made-up latency that is additive over the module's leaves: 0.02 ms each, plus 1 us per parameter."""
    return sum(0.02 + 1e-3 * sum(p.numel() for p in leaf.parameters(recurse=False)) for leaf in leaves(module))


def synthetic_timer(interaction: float = 0.0):
    """A stand-in for :func:`measurement.measure` that needs no clock: it runs each network once (which sizes
    lazy modules, as the real warm-up does); each network's latency is :func:`synthetic_ms`, times
    ``1 + interaction * (share of its leaves that pool)``, which no sum over operations can express; each
    watched module's, its own :func:`synthetic_ms`."""
    def measure(networks, input_shape, settings, watched=()):
        timed = []
        for index, network in enumerate(networks):
            with torch.no_grad():
                network.eval()(torch.zeros(settings.batch, *input_shape))
            pooling = sum(isinstance(leaf, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for leaf in leaves(network))
            total = synthetic_ms(network) * (1 + interaction * pooling / len(leaves(network)))
            timed.append(Timed(total, [synthetic_ms(module) for module in (watched[index] if watched else [])]))
        return timed
    return measure


def synthetic_profile(directory, interaction: float = 0.0):
    """The latency profile a quick-start trial builds (its defaults: 40 architectures, batch 1) on the synthetic
    timer, which makes every figure of it deterministic."""
    loss = part(LatencyAwareDARTS(latency_cache=directory), LatencyLoss)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(profile_module, 'measure', synthetic_timer(interaction))
        return profile_space(deployed_space(), INPUT_SHAPE, loss.timing, loss.samples, loss.cache)


@pytest.fixture(scope='module')
def quick_start_profile(tmp_path_factory):
    return synthetic_profile(tmp_path_factory.mktemp('synthetic-latency'))


def supernet_with(profile, **options) -> tuple[LatencyAwareDARTS, torch.nn.Module]:
    strategy = LatencyAwareDARTS(input_shape=INPUT_SHAPE, **options)
    part(strategy, LatencyLoss).term.profile = profile
    return strategy, DifferentiableSearch().mutate_model(QUICK_START.search_space())


def alphas_of(supernet: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for name, p in supernet.named_parameters() if ALPHA in name]


def test_on_additive_latencies_the_lookup_table_is_exact(quick_start_profile):
    """Each operation's in-place time, summed with the rest, is the whole network's: the table measured on
    the probes predicts every held-out network exactly, and the network's correction stays near zero."""
    errors = quick_start_profile.errors
    assert errors['lookup'] < 1e-3 and errors['network'] < 0.1
    assert errors['mean'] > 5  # the architectures' latencies differ: predicting them is not trivial
    lookup = quick_start_profile.lookup
    assert float(lookup.scale) == pytest.approx(1, abs=1e-5) and abs(float(lookup.offset_ms)) < 1e-4


def test_the_predictors_on_latencies_no_table_can_add_up(tmp_path):
    """With an interaction between the operations both predictors stay far better than the mean."""
    errors = synthetic_profile(tmp_path, interaction=1.0).errors
    assert errors['lookup'] < 3 and errors['network'] < 3 and errors['mean'] > 9


@pytest.mark.parametrize('predictor', ['lookup', 'network'])
def test_latency_term_gradient_lowers_the_predicted_latency(quick_start_profile, predictor):
    strategy, supernet = supernet_with(quick_start_profile, latency_weight=1.0, latency_predictor=predictor)
    term = part(strategy, LatencyLoss).term
    alphas = alphas_of(supernet)
    before = term(supernet)
    gradients = torch.autograd.grad(before, alphas)
    norm = torch.cat([g.flatten() for g in gradients]).norm()
    assert norm > 0
    # the gradient agrees with a finite difference along itself
    step = 1e-2
    with torch.no_grad():
        for alpha, gradient in zip(alphas, gradients):
            alpha -= step * gradient / norm
        after = term(supernet)
    before = float(before.detach())
    assert float(after) < before
    assert before - float(after) == pytest.approx(step * float(norm), rel=0.05)


def test_the_hinge_is_flat_below_the_target(quick_start_profile):
    strategy, supernet = supernet_with(quick_start_profile, latency_weight=1.0)
    expected = float(part(strategy, LatencyLoss).term.expected_latency_ms(supernet).detach())
    for target, active in ((expected * 2, False), (expected / 2, True)):
        hinge, _ = supernet_with(quick_start_profile, latency_weight=1.0, latency_target_ms=target)
        gradients = torch.autograd.grad(part(hinge, LatencyLoss).term(supernet), alphas_of(supernet))
        assert any(bool(g.abs().sum() > 0) for g in gradients) == active


def test_encoding_of_an_architecture_and_of_the_supernet(quick_start_profile):
    encoding = Encoding.of(deployed_space())
    assert encoding.shape == (2 * 14, 8)  # 2 cell types x 14 edges, 7 operations + zero
    assert [(choice.label, choice.slots) for choice in encoding.choices] == [('normal', 2), ('reduce', 2)]
    architecture = encoding.sample(random.Random(0))
    one_hot = encoding.one_hot(architecture)
    assert torch.equal(one_hot.sum(dim=1), torch.ones(28))
    assert int((one_hot[:, -1] == 0).sum()) == 2 * 4 * 2  # two kept edges per node
    assert set(deployed_space().simplify()) == set(architecture)
    _, supernet = supernet_with(quick_start_profile)
    probabilities = encoding.probabilities(supernet)
    assert probabilities.shape == one_hot.shape and probabilities.requires_grad
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(28))


PROBES = 7 * 3
"""The quick-start space's probes: every operation on every edge, 3 per operation (node 5 has 5 inputs, 2 slots)."""


def counted_timer(monkeypatch) -> list[int]:
    """The synthetic timer in place of the profile's; the list of how many networks each call timed."""
    timed: list[int] = []
    measure = synthetic_timer()

    def counted(networks, *args, **kwargs):
        timed.append(len(networks))
        return measure(networks, *args, **kwargs)

    monkeypatch.setattr(profile_module, 'measure', counted)
    return timed


def test_the_cache_is_reused_not_remeasured(tmp_path, monkeypatch):
    timed = counted_timer(monkeypatch)
    settings = TimingSettings(repeats=2, warmup=1)
    first = profile_space(deployed_space(), INPUT_SHAPE, settings, 6, tmp_path)
    assert timed == [6 + PROBES]
    again = profile_space(deployed_space(), INPUT_SHAPE, settings, 6, tmp_path)
    assert timed == [6 + PROBES]  # nothing measured
    assert torch.equal(again.lookup.table, first.lookup.table) and again.errors == first.errors
    profile_space(deployed_space(), INPUT_SHAPE, settings, 8, tmp_path)
    assert timed == [6 + PROBES, 2]  # only the two new samples
    other_batch = LatencyCache(tmp_path, deployed_space(), INPUT_SHAPE, TimingSettings(batch=4))
    assert other_batch.path != LatencyCache(tmp_path, deployed_space(), INPUT_SHAPE, settings).path
    assert other_batch.load(Encoding.of(deployed_space())) == {'samples': []}


def damage_samples(content: dict) -> dict:
    """A latency that is not a number in one sample, a choice the space lacks in another."""
    samples = [dict(sample) for sample in content['samples']]
    samples[1]['latency_ms'] = 'fast'
    samples[4]['architecture'] = {**samples[4]['architecture'], 'normal/op_2_0': 'conv_9x9'}
    return {**content, 'samples': samples}


def samples_of_another_space(content: dict) -> dict:
    """Every sample an architecture of other labels (a space edited since), which would encode as
    nothing, in a cache that still holds a table of the right shape."""
    samples = [{**sample, 'architecture': {'choice0': 'conv_3x3'}} for sample in content['samples']]
    return {**content, 'samples': samples}


CACHE_DAMAGE = {  # damage -> (the cache file's new text, what is measured again: samples, probes)
    'truncated': (lambda text: text[:len(text) // 2], (6, PROBES)),
    'empty': (lambda text: '', (6, PROBES)),
    'list': (lambda text: json.dumps([json.loads(text)]), (6, PROBES)),
    'table shape': (lambda text: json.dumps({**json.loads(text), 'lookup': {
        **json.loads(text)['lookup'], 'table': json.loads(text)['lookup']['table'][:-1]}}), (0, PROBES)),
    'bad samples': (lambda text: json.dumps(damage_samples(json.loads(text))), (2, 0)),
    'samples of another space': (lambda text: json.dumps(samples_of_another_space(json.loads(text))), (6, 0)),
}


@pytest.mark.parametrize('damage', CACHE_DAMAGE)
def test_a_damaged_cache_is_measured_again_with_one_warning(damage, tmp_path, monkeypatch, caplog):
    """A crash or an edit can leave the cache file anything: what it cannot give is measured again."""
    timed = counted_timer(monkeypatch)
    settings = TimingSettings(repeats=2, warmup=1)
    first = profile_space(deployed_space(), INPUT_SHAPE, settings, 6, tmp_path)
    [path] = tmp_path.glob('*.json')
    change, (samples, probes) = CACHE_DAMAGE[damage]
    path.write_text(change(path.read_text()))
    with caplog.at_level(logging.WARNING, logger='nni_darts_ext'):
        again = profile_space(deployed_space(), INPUT_SHAPE, settings, 6, tmp_path)
    assert timed == [6 + PROBES, samples + probes]
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno >= logging.WARNING and 'latency cache' in record.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0], warnings
    assert torch.equal(again.lookup.table, first.lookup.table)  # the synthetic timer measures alike
    content = json.loads(path.read_text())  # rewritten whole
    assert len(content['samples']) == 6 and len(content['lookup']['table']) == len(first.lookup.table)


def edited_space(channels: int) -> ModelSpace:
    """A space class as a user writes it, and as the user edits it: one name, no arguments."""
    class Edited(ModelSpace):
        def __init__(self):
            super().__init__()
            self.choice = LayerChoice({'conv': nn.Conv2d(1, channels, 3, padding=1), 'pool': nn.MaxPool2d(3, 1, 1)},
                                      label='choice')

        def forward(self, x):
            return self.choice(x)
    return Edited()


def test_a_space_edited_since_the_cache_was_written_has_its_own_cache(tmp_path):
    settings = TimingSettings(repeats=2, warmup=1)
    before, after = LatencyCache(tmp_path, edited_space(4), INPUT_SHAPE, settings), \
        LatencyCache(tmp_path, edited_space(8), INPUT_SHAPE, settings)
    assert before.key['space'].split(' modules ')[0] == after.key['space'].split(' modules ')[0]
    assert before.path != after.path


@pytest.mark.parametrize('raw', [[0.2] * 6, [0.2, 0.2, 0.2, 0.2, 0.2, 0.2001]], ids=['alike', 'nearly alike'])
def test_samples_that_do_not_fix_the_scale_leave_it_positive(raw):
    """Networks whose table predictions are (nearly) alike fix the offset alone: a least-squares
    scale over them would be any number, a negative one turning the latency gradient around."""
    table = LookupTable(0.0, torch.ones(1, 1))
    encodings = torch.tensor(raw)[:, None, None]  # one row, one column: the table predicts the encoding
    measured = torch.tensor([0.25, 0.31, 0.42, 0.23, 0.27, 0.35])
    table.calibrate(encodings, measured)
    assert 0 < float(table.scale) < 2 and abs(float(table.offset_ms)) < 1
    predicted = table(encodings)
    assert torch.allclose(predicted, predicted[0].expand(6), rtol=1e-3)  # alike networks, alike predictions
    assert float(measured.min()) < float(predicted[0]) < float(measured.max())


def test_measuring_the_profile_leaves_the_random_state_as_reading_it_does(tmp_path, monkeypatch):
    """A fresh machine measures the latency profile (building networks), a later trial reads it from the
    cache: either way the search goes on from the same random state, so it finds the same architecture."""
    monkeypatch.setattr(profile_module, 'measure', synthetic_timer())
    states = []
    for _ in range(2):  # measured, then read from the cache
        torch.manual_seed(0)
        strategy = make_strategy('ladarts', input_shape=[1, 8, 8], latency_samples=4, latency_repeats=1,
                                 latency_cache=tmp_path)
        strategy.mutate_model(DictChoices())
        states.append(torch.get_rng_state())
    assert len(list(tmp_path.glob('*.json'))) == 1
    assert torch.equal(*states)


@pytest.mark.parametrize('device, message', [
    ('tpu', "unknown latency device 'tpu'; accepted: cpu, cuda, cuda:N"),
    ('gpu', "unknown latency device 'gpu'; accepted: cpu, cuda, cuda:N"),
    ('cuda:x', "unknown latency device 'cuda:x'"),
])
def test_a_bad_device_name_is_a_clear_error(device, message):
    with pytest.raises(ConfigError, match=message):
        make_strategy('ladarts', latency_device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ConfigError, match="latency device 'cuda:1' asked for, but CUDA is not available here"):
        resolve_device('cuda:1')


@pytest.mark.parametrize('options, message', [
    ({'latency_weight': -0.1}, 'latency_weight must be a non-negative number, got -0.1'),
    ({'latency_target_ms': 0}, 'latency_target_ms must be a positive number or null, got 0'),
    ({'latency_predictor': 'mlp'}, "unknown latency_predictor 'mlp'; accepted: lookup, network"),
    ({'latency_batch': 0}, 'latency_batch must be a positive integer, got 0'),
    ({'input_shape': [1, 0, 8]}, r"input_shape must be a list of positive integers, one image's \(channels, height, "
                                 r"width\), got \[1, 0, 8\]"),
    ({'input_shape': '1x8x8'}, "input_shape must be a list of positive integers"),
])
def test_bad_latency_options_are_clear_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        make_strategy('ladarts', **options)


def test_too_few_samples_and_no_input_shape_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match='latency_samples must be an integer of at least 4'):
        profile_space(deployed_space(), INPUT_SHAPE, TimingSettings(), 2, tmp_path)
    strategy = LatencyAwareDARTS(latency_cache=tmp_path)
    strategy.mutate_model(DictChoices())
    no_images = Classification(train_dataloaders=DataLoader(['a', 'b'], batch_size=2),
                               val_dataloaders=DataLoader(['a', 'b'], batch_size=2), num_classes=10, logger=False)
    with pytest.raises(ConfigError, match=r"LatencyAwareDARTS needs input_shape, one image's \(channels, height, "
                                          r"width\): the evaluator's first training batch holds no batch of images"):
        strategy.mutate_evaluator(no_images)


def test_a_bad_device_fails_the_trial_with_one_line(tmp_path, capsys):
    assert trial.main(['--variant', 'ladarts', '--option', 'latency_device=tpu', '--output-dir', str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown latency device 'tpu'; accepted: cpu, cuda, cuda:N"


def test_weight_zero_is_nnis_darts(quick_start_profile, monkeypatch):
    """With lambda = 0 the search ends where NNI's own DARTS does: the term's plumbing changes nothing else."""
    def profiled(self, model):
        part(self, LatencyLoss).term.profile = quick_start_profile
        return DifferentiableSearch.mutate_model(self, model)

    monkeypatch.setattr(LatencyAwareDARTS, 'mutate_model', profiled)
    nni = searched_alphas(DARTS())
    ours = searched_alphas(LatencyAwareDARTS(latency_weight=0.0))
    assert nni.keys() == ours.keys() and len(nni) > 0
    for name in nni:
        torch.testing.assert_close(ours[name], nni[name], rtol=1e-4, atol=1e-6)
    heavy = searched_alphas(LatencyAwareDARTS(latency_weight=1.0))
    assert any(not torch.allclose(heavy[name], nni[name], rtol=1e-4, atol=1e-6) for name in nni)


def test_a_trial_reports_expected_predicted_and_measured_latency(quick_parameters, tmp_path, monkeypatch):
    """On the synthetic timer the prediction for the found network is the latency it is measured at."""
    monkeypatch.setattr(profile_module, 'measure', synthetic_timer())
    monkeypatch.setattr(ladarts, 'measure', synthetic_timer())
    config, options = split_parameters({**quick_parameters, 'variant': 'ladarts', 'latency_samples': 8,
                                        'latency_repeats': 3, 'latency_cache': str(tmp_path / 'cache')})
    pl.seed_everything(0, verbose=False)
    final = trial.run(config, options, tmp_path / 'run')
    epochs = json.loads((tmp_path / 'run' / 'metrics.json').read_text())['epochs']
    search = [record for record in epochs if record['phase'] == 'search']
    assert search and all(record['expected_latency_ms'] > 0 for record in search)
    assert final['measured_latency_ms'] > 0
    assert final['predicted_latency_ms'] == pytest.approx(final['measured_latency_ms'], rel=0.01)
    assert final['latency_device'] == describe_device('cpu') and final['latency_device'].startswith('cpu (')
    assert list((tmp_path / 'cache').glob('*.json'))


def user_space_profile(build, directory, samples: int = 12):
    """The latency profile of a hand-written space on the synthetic timer (8x8 one-channel images)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(profile_module, 'measure', synthetic_timer())
        return profile_space(build(), INPUT_SHAPE, TimingSettings(warmup=0, repeats=1), samples, directory)


def test_input_shape_is_read_from_the_first_training_batch(tmp_path, monkeypatch, caplog):
    """Without input_shape the networks are timed on one image of the evaluator's first training batch, said in
    one log line; peeking at the batch leaves the random state as it was (the loader is shuffled)."""
    shapes = []
    timer = synthetic_timer()

    def recorded(networks, input_shape, *args, **kwargs):
        shapes.append(tuple(input_shape))
        return timer(networks, input_shape, *args, **kwargs)

    monkeypatch.setattr(profile_module, 'measure', recorded)
    strategy = make_strategy('ladarts', latency_samples=4, latency_repeats=1, latency_cache=tmp_path)
    strategy.mutate_model(DictChoices())
    assert part(strategy, LatencyLoss).term.profile is None  # the shape is not known yet
    evaluator = tiny_evaluator()
    state = torch.get_rng_state()
    assert ladarts.first_image_shape(evaluator) == (1, 8, 8)
    assert torch.equal(torch.get_rng_state(), state)
    with caplog.at_level(logging.INFO, logger='nni_darts_ext'):
        strategy.mutate_evaluator(evaluator)
    assert [r.getMessage() for r in caplog.records if r.name == ladarts.__name__] == [
        "LA-DARTS times networks on input_shape [1, 8, 8], one image of the evaluator's first training batch"]
    assert part(strategy, LatencyLoss).input_shape == (1, 8, 8) and shapes == [(1, 8, 8)]
    assert part(make_strategy('ladarts', input_shape=[1, 8, 8]), LatencyLoss).input_shape == (1, 8, 8)


def test_a_given_input_shape_outlives_the_trials_data_shape():
    space = QUICK_START.search_space()
    given = make_strategy('ladarts', input_shape=[3, 32, 32])
    given.deploy(space, (1, 8, 8))
    assert part(given, LatencyLoss).input_shape == (3, 32, 32)
    from_data = make_strategy('ladarts')
    from_data.deploy(space, (1, 8, 8))
    assert part(from_data, LatencyLoss).input_shape == (1, 8, 8)
    assert part(from_data, LatencyLoss).deployed_space is space


def test_the_encoding_of_layer_and_input_choices():
    """An InputChoice of 2 of 3 inputs gives each chosen input half of its row; the supernet's rows are NNI's
    softmaxes, padded to the widest row."""
    encoding = Encoding.of(InputChoices(2))
    assert encoding.labels == ('branch', 'after') and encoding.shape == (2, 3)
    assert [row.columns for row in encoding.rows] == [(0, 1, 2), ('conv3x3', 'skip')]
    assert encoding.one_hot({'branch': [0, 2], 'after': 'skip'}).tolist() == [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]
    supernet = DifferentiableSearch().mutate_model(InputChoices(2))
    alphas = dict(alphas_by_label(supernet))
    with torch.no_grad():
        alphas['branch'].copy_(torch.tensor([1.0, 0.0, -1.0]))
        alphas['after'].copy_(torch.tensor([0.5, -0.5]))
    probabilities = encoding.probabilities(supernet)
    assert probabilities.requires_grad
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(2))
    torch.testing.assert_close(probabilities, torch.stack([torch.softmax(torch.tensor([1.0, 0.0, -1.0]), 0),
                                                           torch.tensor([0.7311, 0.2689, 0.0])]), atol=1e-4, rtol=0)


def alphas_by_label(supernet: torch.nn.Module):
    """``(label, alpha)`` of every free mixed layer, input and repeat of a DARTS supernet."""
    for module in supernet.modules():
        alpha = getattr(module, ALPHA, None)
        if isinstance(alpha, torch.nn.ParameterDict):
            yield from alpha.items()
        elif alpha is not None:
            yield module.label, alpha


def test_a_choice_some_architectures_lack_is_weighed_by_what_holds_it():
    """Block j of a Repeat is there with the probability of the depths above j; a choice nested in a candidate,
    with that candidate's; absent, it encodes as the zero column."""
    encoding = Encoding.of(Repeated())
    assert encoding.labels == ('depth', 'block0', 'block1', 'block2')
    assert [row.columns[-1] for row in encoding.rows] == [3, 'conv1x1', ZERO, ZERO]  # block0 is always there
    one_hot = encoding.one_hot({'depth': 2, 'block0': 'conv1x1', 'block1': 'conv3x3', 'block2': 'conv1x1'})
    assert one_hot.tolist() == [[0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]]
    supernet = DifferentiableSearch().mutate_model(Repeated())
    alphas = dict(alphas_by_label(supernet))
    with torch.no_grad():
        alphas['depth'].copy_(torch.log(torch.tensor([0.5, 0.3, 0.2])))
        for label in ('block0', 'block1', 'block2'):
            alphas[label].copy_(torch.log(torch.tensor([0.6, 0.4])))
    rows = encoding.probabilities(supernet)
    expected = [[0.5, 0.3, 0.2], [0.6, 0.4, 0.0], [0.5 * 0.6, 0.5 * 0.4, 0.5], [0.2 * 0.6, 0.2 * 0.4, 0.8]]
    torch.testing.assert_close(rows, torch.tensor(expected))
    assert torch.autograd.grad(rows[3, 0], alphas['depth'])[0].abs().sum() > 0

    nested = Encoding.of(Nested())
    assert nested.labels == ('outer', 'inner')
    assert nested.one_hot({'outer': 'skip', 'inner': 'conv1x1'}).tolist() == [[0, 1, 0], [0, 0, 1]]
    supernet = DifferentiableSearch().mutate_model(Nested())
    alphas = dict(alphas_by_label(supernet))
    with torch.no_grad():
        alphas['outer'].copy_(torch.log(torch.tensor([0.7, 0.3])))
        alphas['inner'].copy_(torch.log(torch.tensor([0.9, 0.1])))
    torch.testing.assert_close(nested.probabilities(supernet), torch.tensor([[0.7, 0.3, 0.0], [0.63, 0.07, 0.3]]))


class ParameterChoice(ModelSpace):
    """A convolution of chosen width: a choice of a module's parameters."""

    def __init__(self):
        super().__init__()
        self.conv = MutableConv2d(1, Categorical([2, 4], label='width'), 3)

    def forward(self, x):
        return self.conv(x)


class CellInChoice(ModelSpace):
    """A LayerChoice between an NNI Cell and a skip."""

    def __init__(self):
        super().__init__()
        cell = Cell({'skip': lambda node, op, source: nn.Identity()}, num_nodes=1, label='cell')
        self.choice = LayerChoice({'cell': cell, 'skip': nn.Identity()}, label='choice')

    def forward(self, x):
        return self.choice(x)


@pytest.mark.parametrize('space, message', [
    (ParameterChoice, "LA-DARTS encodes NNI Cells, LayerChoice, InputChoice and Repeat depths; 'width' is a choice "
                      "of another kind"),
    (CellInChoice, "NNI Cell 'cell' is inside a choice \\('choice'\\); LA-DARTS encodes cells that every architecture"),
])
def test_choices_it_cannot_encode_are_refused_in_one_line(space, message):
    with pytest.raises(ConfigError, match=message):
        Encoding.of(space())


def test_on_additive_latencies_the_table_is_exact_on_layer_choices(tmp_path):
    """Each candidate's row entry is its own (synthetic) time, the rest is the stem and the head's."""
    profile = user_space_profile(DictChoices, tmp_path)
    assert profile.errors['lookup'] < 1e-3 and profile.errors['mean'] > 1
    space = DictChoices()
    candidates = [[choice[name] for name in choice.names] for choice in (space.first, space.second)]
    expected = [[synthetic_ms(module) for module in row] + [0.0] * (3 - len(row)) for row in candidates]
    torch.testing.assert_close(profile.lookup.table, torch.tensor(expected))
    assert float(profile.lookup.base_ms) == pytest.approx(synthetic_ms(space.stem) + synthetic_ms(space.head))


def test_the_latency_gradient_reaches_a_layer_choice_and_lowers_the_latency(tmp_path):
    profile = user_space_profile(DictChoices, tmp_path)
    strategy = LatencyAwareDARTS(input_shape=INPUT_SHAPE, latency_weight=1.0, latency_cache=tmp_path)
    part(strategy, LatencyLoss).term.profile = profile
    supernet = DifferentiableSearch().mutate_model(DictChoices())
    alphas = dict(alphas_by_label(supernet))
    before = part(strategy, LatencyLoss).term(supernet)
    first, second = torch.autograd.grad(before, [alphas['first'], alphas['second']])
    # the convolutions cost more than the pooling and the skip: the gradient raises their logits' cost
    assert first[0] > 0 and first[2] < 0 and second[0] > 0 > second[1]
    with torch.no_grad():
        alphas['first'] -= 0.1 * first
        alphas['second'] -= 0.1 * second
        assert float(part(strategy, LatencyLoss).term(supernet)) < float(before)


def test_the_predictors_follow_the_encodings_device(tmp_path):
    """A supernet on another device (a GPU) gives its probabilities there: the predictors move to them."""
    profile = user_space_profile(DictChoices, tmp_path)
    for name in ('lookup', 'network'):
        assert profile.predict(name, torch.zeros(profile.encoding.shape, device='meta')).device.type == 'meta'


@pytest.mark.parametrize('name', USER_SPACES)
def test_one_search_step_on_every_user_space(name, tmp_path, monkeypatch):
    """ladarts as NNI users make it (no input_shape) on each hand-written space: the exported architecture
    freezes and runs, and the profile is exact on the synthetic timer. Not quite with merge_op='loose_end':
    the cell's output width, and so the next convolution's cost, depends on which nodes no other node uses,
    the architecture as a whole, which no sum over edges can express."""
    monkeypatch.setattr(profile_module, 'measure', synthetic_timer())
    strategy = make_strategy('ladarts', latency_samples=4, latency_repeats=1, latency_cache=tmp_path)
    architecture = search_once(strategy, USER_SPACES[name])
    assert set(architecture) == set(USER_SPACES[name]().simplify()) and part(strategy, LatencyLoss).input_shape == (1, 8, 8)
    assert part(strategy, LatencyLoss).term.profile.errors['lookup'] < (3 if 'loose_end' in name else 1e-3)


def fake_images_evaluator(image_shape: tuple[int, ...]) -> Classification:
    """One training step on 16 random images of ``image_shape``, 10 classes, batch 8."""
    images = torch.randn(16, *image_shape, generator=torch.Generator().manual_seed(0))
    dataset = torch.utils.data.TensorDataset(images, torch.arange(16) % 10)
    return Classification(train_dataloaders=DataLoader(dataset, batch_size=8),
                          val_dataloaders=DataLoader(dataset, batch_size=8), num_classes=10, max_epochs=1,
                          limit_train_batches=1, limit_val_batches=1, accelerator='cpu', enable_progress_bar=False,
                          logger=False, enable_checkpointing=False, enable_model_summary=False)


def test_one_search_step_on_nnis_proxylessnas(tmp_path, monkeypatch):
    """NNI's hub ProxylessNAS at a quarter width: 21 LayerChoices, 5 of them in blocks of a Repeat of chosen
    depth, on 3x32x32 images."""
    monkeypatch.setattr(profile_module, 'measure', synthetic_timer())
    strategy = make_strategy('ladarts', latency_samples=4, latency_repeats=1, latency_cache=tmp_path)

    def build():
        return ProxylessNAS(num_labels=10, width_mult=0.25)

    architecture = search_once(strategy, build, fake_images_evaluator((3, 32, 32)), image_shape=(3, 32, 32))
    profile = part(strategy, LatencyLoss).term.profile
    assert set(architecture) == set(build().simplify()) and part(strategy, LatencyLoss).input_shape == (3, 32, 32)
    assert profile.encoding.shape == (26, 7)  # 5 depths over 4 values, 21 choices of 6 blocks (+ absent)
    assert profile.errors['lookup'] < 1e-3


def test_a_module_timed_inside_another_has_its_own_clock(monkeypatch):
    """Watched modules may nest (a Repeat's block holds its LayerChoice): each is timed from its own start."""
    ticks = iter(range(1000))
    monkeypatch.setattr(measurement.time, 'perf_counter', lambda: float(next(ticks)))
    inner = nn.Identity()
    outer = nn.Sequential(inner)
    timed = measure([outer], (1,), TimingSettings(warmup=0, repeats=1), [[outer, inner]])[0]
    # ticks 0, 1: the plain forward; then outer starts at 2, inner runs from 3 to 4, outer stops at 5
    assert timed.total_ms == 1e3 and timed.modules_ms == [3e3, 1e3]
