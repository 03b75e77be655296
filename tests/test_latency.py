"""LA-DARTS: measuring, caching, predicting latency, and the latency term inside a real search."""

from __future__ import annotations

import json
import random

import pytest
import pytorch_lightning as pl
import torch

from nni_darts_ext import ConfigError, LatencyAwareDARTS, ValidatedDARTS, make_strategy, trial
from nni_darts_ext.config import split_parameters
from nni_darts_ext.latency import profile as profile_module
from nni_darts_ext.latency.cache import LatencyCache
from nni_darts_ext.latency.encoding import CellEncoding
from nni_darts_ext.latency.measurement import Timed, TimingSettings, resolve_device
from nni_darts_ext.latency.profile import profile_space
from nni_darts_ext.spaces import load_space
from nni_darts_ext.strategies import ladarts

from .test_stabilized import searched_alphas

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
    """A stand-in for :func:`measurement.measure` that needs no clock: each network's latency is
    :func:`synthetic_ms`, times ``1 + interaction * (share of its leaves that pool)``, which no sum
    over operations can express; each watched module's, its own :func:`synthetic_ms`."""
    def measure(networks, input_shape, settings, watched=()):
        timed = []
        for index, network in enumerate(networks):
            pooling = sum(isinstance(leaf, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for leaf in leaves(network))
            total = synthetic_ms(network) * (1 + interaction * pooling / len(leaves(network)))
            timed.append(Timed(total, [synthetic_ms(module) for module in (watched[index] if watched else [])]))
        return timed
    return measure


def synthetic_profile(directory, interaction: float = 0.0):
    """The latency profile a quick-start trial builds (its defaults: 40 architectures, batch 1) on the synthetic
    timer, which makes every figure of it deterministic."""
    strategy = LatencyAwareDARTS(latency_cache=directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(profile_module, 'measure', synthetic_timer(interaction))
        return profile_space(deployed_space(), INPUT_SHAPE, strategy.timing, strategy.samples, strategy.cache)


@pytest.fixture(scope='module')
def quick_start_profile(tmp_path_factory):
    return synthetic_profile(tmp_path_factory.mktemp('synthetic-latency'))


def supernet_with(profile, **options) -> tuple[LatencyAwareDARTS, torch.nn.Module]:
    strategy = LatencyAwareDARTS(input_shape=INPUT_SHAPE, **options)
    strategy.latency_term.profile = profile
    return strategy, ValidatedDARTS().mutate_model(QUICK_START.search_space())


def alphas_of(supernet: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for name, p in supernet.named_parameters() if '_arch_alpha' in name]


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
    term = strategy.latency_term
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
    expected = float(strategy.latency_term.expected_latency_ms(supernet).detach())
    for target, active in ((expected * 2, False), (expected / 2, True)):
        hinge, _ = supernet_with(quick_start_profile, latency_weight=1.0, latency_target_ms=target)
        gradients = torch.autograd.grad(hinge.latency_term(supernet), alphas_of(supernet))
        assert any(bool(g.abs().sum() > 0) for g in gradients) == active


def test_encoding_of_an_architecture_and_of_the_supernet(quick_start_profile):
    encoding = CellEncoding.of(deployed_space())
    assert encoding.shape == (2 * 14, 8) and encoding.slots == 2  # 2 cell types x 14 edges, 7 operations + zero
    architecture = encoding.sample(random.Random(0))
    one_hot = encoding.one_hot(architecture)
    assert torch.equal(one_hot.sum(dim=1), torch.ones(28))
    assert int((one_hot[:, -1] == 0).sum()) == 2 * 4 * 2  # two kept edges per node
    assert set(deployed_space().simplify()) == set(architecture)
    _, supernet = supernet_with(quick_start_profile)
    probabilities = encoding.probabilities(supernet)
    assert probabilities.shape == one_hot.shape and probabilities.requires_grad
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(28))


def test_the_cache_is_reused_not_remeasured(tmp_path, monkeypatch):
    timed = []
    measure = synthetic_timer()

    def counted(networks, *args, **kwargs):
        timed.append(len(networks))
        return measure(networks, *args, **kwargs)

    monkeypatch.setattr(profile_module, 'measure', counted)
    settings = TimingSettings(repeats=2, warmup=1)
    first = profile_space(deployed_space(), INPUT_SHAPE, settings, 6, tmp_path)
    probes = 7 * 3  # every operation on every edge: 3 probes per operation (node 5 has 5 inputs, 2 slots)
    assert timed == [6 + probes]
    again = profile_space(deployed_space(), INPUT_SHAPE, settings, 6, tmp_path)
    assert timed == [6 + probes]  # nothing measured
    assert torch.equal(again.lookup.table, first.lookup.table) and again.errors == first.errors
    profile_space(deployed_space(), INPUT_SHAPE, settings, 8, tmp_path)
    assert timed == [6 + probes, 2]  # only the two new samples
    other_batch = LatencyCache(tmp_path, deployed_space(), INPUT_SHAPE, TimingSettings(batch=4))
    assert other_batch.path != LatencyCache(tmp_path, deployed_space(), INPUT_SHAPE, settings).path
    assert other_batch.load() == {'samples': []}


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
])
def test_bad_latency_options_are_clear_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        make_strategy('ladarts', **options)


def test_too_few_samples_and_no_input_shape_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match='latency_samples must be an integer of at least 4'):
        profile_space(deployed_space(), INPUT_SHAPE, TimingSettings(), 2, tmp_path)
    with pytest.raises(ConfigError, match=r'LatencyAwareDARTS needs input_shape'):
        LatencyAwareDARTS().mutate_model(QUICK_START.search_space())


def test_a_bad_device_fails_the_trial_with_one_line(tmp_path, capsys):
    assert trial.main(['--variant', 'ladarts', '--option', 'latency_device=tpu', '--output-dir', str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown latency device 'tpu'; accepted: cpu, cuda, cuda:N"


def test_weight_zero_is_nnis_darts(quick_start_profile, monkeypatch):
    """With lambda = 0 the search ends where NNI's own DARTS does: the term's plumbing changes nothing else."""
    def profiled(self, model):
        self.latency_term.profile = quick_start_profile
        return ValidatedDARTS.mutate_model(self, model)

    monkeypatch.setattr(LatencyAwareDARTS, 'mutate_model', profiled)
    nni = searched_alphas(ValidatedDARTS())
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
    assert list((tmp_path / 'cache').glob('*.json'))
