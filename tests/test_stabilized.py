"""The estimators inside a real search: StabilizedDARTS and SecondOrderDARTS on the quick-start supernet."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from nni_darts_ext import ConfigError, SecondOrderDARTS, StabilizedDARTS, ValidatedDARTS, make_strategy, trial
from nni_darts_ext.collapse import CollapseMonitor
from nni_darts_ext.config import split_parameters
from nni_darts_ext.hypergradient import Amended, FirstOrder, SecondOrder


def searched_alphas(strategy, initial: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Architecture parameters after one search epoch of 3 steps (192 images, batch 32).

    ``initial``, when given, receives their values before the search.
    """
    config, _ = split_parameters({'train_subset': 192, 'batch_size': 32, 'search_epochs': 1, 'accelerator': 'cpu'})
    pl.seed_everything(0, verbose=False)
    _, data, space, size, _ = trial.prepare(config, {})
    supernet = strategy.mutate_model(space.search_space(size))

    def alphas() -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in supernet.named_parameters() if '._arch_alpha.' in name}

    if initial is not None:
        initial.update(alphas())
    strategy.mutate_evaluator(trial.search_evaluator(data, config, [])).evaluate(supernet)
    return alphas()


def test_amended_step_with_eta_zero_is_nnis_first_order_step():
    """Our architecture step with the implicit term scaled to zero reproduces NNI's own DARTS step."""
    nni = searched_alphas(ValidatedDARTS())
    ours = searched_alphas(StabilizedDARTS(eta=0.0))
    assert nni.keys() == ours.keys() and len(nni) > 0
    for name in nni:
        torch.testing.assert_close(ours[name], nni[name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('strategy, estimator', [(StabilizedDARTS(), Amended), (SecondOrderDARTS(), SecondOrder)],
                         ids=['stabilized', 'darts2'])
def test_each_architecture_step_takes_the_estimators_gradient(monkeypatch, strategy, estimator):
    """Record, from inside the search, each estimate next to the first-order gradient of the same step."""
    seen = []
    estimate = estimator.__call__

    def recorded(self, problem):
        first_order = FirstOrder()(problem)
        gradients = estimate(self, problem)
        seen.append((problem, gradients, first_order))
        return gradients

    monkeypatch.setattr(estimator, '__call__', recorded)
    searched_alphas(strategy)
    assert len(seen) == 3  # one per search step
    for problem, gradients, first_order in seen:
        assert len(problem.alphas) == len(gradients) > 0
        assert not set(map(id, problem.alphas)) & set(map(id, problem.weights))
        difference = max(float((g - f).abs().max()) for g, f in zip(gradients, first_order))
        assert difference > 1e-3 * max(float(f.abs().max()) for f in first_order)  # the implicit term is there
    step = seen[0][0].inner_step  # the weight optimizer's settings (the quick start's SGD)
    assert (step.learning_rate, step.momentum, step.weight_decay) == (pytest.approx(0.025), 0.9, 3e-4)


def test_warmup_freezes_the_estimated_architecture_step_too():
    initial: dict[str, torch.Tensor] = {}
    searched = searched_alphas(StabilizedDARTS(warmup_epochs=1), initial)
    assert searched.keys() == initial.keys() and all(torch.equal(searched[n], initial[n]) for n in initial)
    moved = searched_alphas(StabilizedDARTS(), initial)
    assert not all(torch.equal(moved[n], initial[n]) for n in initial)


def test_penalty_with_an_estimator_is_refused():
    with pytest.raises(ConfigError, match="NNI's penalty"):
        StabilizedDARTS(penalty={'profiler': None, 'baseline': 1.0})


def test_variants_carry_their_estimators():
    assert make_strategy('stabilized').architecture_gradient.eta == 1e-3
    assert make_strategy('stabilized', eta=0.01).architecture_gradient.eta == 0.01
    assert make_strategy('darts').architecture_gradient is None
    assert CollapseMonitor().early_stop == 'none'
