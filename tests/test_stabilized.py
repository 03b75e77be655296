"""The estimators inside a real search: StabilizedDARTS and SecondOrderDARTS on the quick-start supernet."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch.func import functional_call
from nni.nas.oneshot.pytorch.strategy import DARTS

from nni_darts_ext import ConfigError, DifferentiableSearch, SecondOrderDARTS, StabilizedDARTS, make_strategy, trial
from nni_darts_ext.collapse import CollapseMonitor
from nni_darts_ext.config import split_parameters
from nni_darts_ext.hypergradient import Amended, BilevelProblem, FirstOrder, SecondOrder
from nni_darts_ext.supermodules.designed_cell import SkipConnectDropout
from nni_darts_ext.training import ClassifierModule


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


def test_darts_s_architecture_step_for_alpha_alone_is_nnis_first_order_step():
    """NNI's step backpropagates to every weight; the first-order estimate, to alpha alone: the same alphas."""
    nni = searched_alphas(DARTS())
    ours = searched_alphas(DifferentiableSearch())
    assert nni.keys() == ours.keys() and len(nni) > 0
    for name in nni:
        torch.testing.assert_close(ours[name], nni[name], rtol=1e-4, atol=1e-6)


def test_amended_step_with_eta_zero_is_nnis_first_order_step():
    """Our architecture step with the implicit term scaled to zero reproduces NNI's own DARTS step."""
    nni = searched_alphas(DARTS())
    ours = searched_alphas(StabilizedDARTS(eta=0.0))
    assert nni.keys() == ours.keys() and len(nni) > 0
    for name in nni:
        torch.testing.assert_close(ours[name], nni[name], rtol=1e-4, atol=1e-6)


def written_out(estimator: Amended | SecondOrder, problem: BilevelProblem) -> list[torch.Tensor]:
    """The estimator's formula with exact second derivatives, from autograd directly (one graph of
    the training gradient serves every product)."""
    weights, alphas, step = problem.weights, problem.alphas, problem.inner_step
    if isinstance(estimator, Amended):
        direct = torch.autograd.grad(problem.val_loss(), alphas + weights, allow_unused=True)
        alpha_gradient, u = zeros_for_unused(direct[:len(alphas)], alphas), direct[len(alphas):]
        train_gradient = torch.autograd.grad(problem.train_loss(), weights, create_graph=True)
        hu = torch.autograd.grad(train_gradient, weights, grad_outputs=u, retain_graph=True)
        curvature = [h + step.weight_decay * v for h, v in zip(hu, u)]
        mixed = zeros_for_unused(torch.autograd.grad(train_gradient, alphas, grad_outputs=curvature,
                                                     allow_unused=True), alphas)
        return [g - estimator.eta * m for g, m in zip(alpha_gradient, mixed)]
    train_gradient = torch.autograd.grad(problem.train_loss(), weights)
    buffers = step.momentum_buffers or [None] * len(weights)
    saved = [w.detach().clone() for w in weights]
    with torch.no_grad():
        for w, g, b in zip(weights, train_gradient, buffers):
            w.sub_(step.learning_rate * (g + step.weight_decay * w + (0 if b is None else step.momentum * b)))
    unrolled = torch.autograd.grad(problem.val_loss(), alphas + weights, allow_unused=True)
    with torch.no_grad():
        for w, original in zip(weights, saved):
            w.copy_(original)
    alpha_gradient, v = zeros_for_unused(unrolled[:len(alphas)], alphas), unrolled[len(alphas):]
    train_gradient = torch.autograd.grad(problem.train_loss(), weights, create_graph=True)
    mixed = zeros_for_unused(torch.autograd.grad(train_gradient, alphas, grad_outputs=v, allow_unused=True), alphas)
    return [g - step.learning_rate * m for g, m in zip(alpha_gradient, mixed)]


def zeros_for_unused(gradients, parameters) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if g is None else g for g, p in zip(gradients, parameters)]


@pytest.mark.parametrize('strategy, estimator', [(StabilizedDARTS(), Amended), (SecondOrderDARTS(), SecondOrder)],
                         ids=['stabilized', 'darts2'])
def test_each_architecture_step_takes_the_estimators_gradient(monkeypatch, strategy, estimator):
    """Record, from inside the search, each estimate next to its formula written out with autograd."""
    seen = []
    estimate = estimator.__call__

    def recorded(self, problem):
        reference = written_out(self, problem)
        gradients = estimate(self, problem)
        seen.append((problem, [g.clone() for g in gradients], reference))  # the weight step's backward adds to them
        return gradients

    monkeypatch.setattr(estimator, '__call__', recorded)
    searched_alphas(strategy)
    assert len(seen) == 3  # one per search step
    for problem, gradients, reference in seen:
        assert len(problem.alphas) == len(gradients) > 0
        assert not set(map(id, problem.alphas)) & set(map(id, problem.weights))
        for estimate, expected in zip(gradients, reference):
            torch.testing.assert_close(estimate, expected, rtol=1e-4, atol=1e-7)
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
    assert make_strategy('stabilized').slots.estimator.eta == StabilizedDARTS().slots.estimator.eta == 0.01
    assert make_strategy('stabilized', eta=0.1).slots.estimator.eta == 0.1
    assert isinstance(make_strategy('darts').slots.estimator, FirstOrder)
    assert DifferentiableSearch(penalty={'profiler': None, 'baseline': 1.0}).slots.estimator is None  # NNI's step
    assert CollapseMonitor().early_stop == 'none'


def quick_start_supernet(strategy, batch_size: int = 32):
    """The strategy's supernet of the quick-start space at search size, and two batches of digits."""
    config, _ = split_parameters({'train_subset': 256, 'batch_size': batch_size, 'accelerator': 'cpu'})
    pl.seed_everything(0, verbose=False)
    _, data, space, size, _ = trial.prepare(config, {})
    supernet = strategy.mutate_model(space.search_space(size))
    images, labels = zip(*(data.train[i] for i in range(2 * batch_size)))
    images, labels = torch.stack(images), torch.tensor(labels)
    halves = [(images[:batch_size], labels[:batch_size]), (images[batch_size:], labels[batch_size:])]
    return supernet, {'train': halves[0], 'val': halves[1]}


def forward_over_reverse(net, loss, weights, alphas, vector) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``H v`` and ``d2L/(da dw) . v`` by forward-mode differentiation of the gradient (torch.func):
    exact, and computed another way than double backward."""
    names = {p: n for n, p in net.named_parameters()}
    weight_names, alpha_names = [names[w] for w in weights], [names[a] for a in alphas]

    def gradient(weight_values):
        def loss_at(w, a):
            buffers = {n: b.clone() for n, b in net.named_buffers()}  # batch norm updates its statistics
            values = {**dict(zip(weight_names, w)), **dict(zip(alpha_names, a)), **buffers}
            return loss(functional_call(net, values, (loss.images,)))
        return torch.func.grad(loss_at, argnums=(0, 1))(weight_values, tuple(a.detach() for a in alphas))

    _, (hv, mixed) = torch.func.jvp(gradient, (tuple(w.detach() for w in weights),), (tuple(vector),))
    return list(hv), list(mixed)


class BatchLoss:
    """Cross-entropy of logits on a fixed batch; ``images`` is the batch the network reads."""

    def __init__(self, batch):
        self.images, self.labels = batch

    def __call__(self, logits):
        return torch.nn.functional.cross_entropy(logits, self.labels)


@pytest.mark.parametrize('strategy', [StabilizedDARTS(), SecondOrderDARTS()], ids=['stabilized', 'darts2'])
def test_default_products_are_exact_on_the_quick_start_supernet(strategy):
    """ReLU, max-pool and batch-norm kinks make finite differences miss the products; the default must not."""
    net, batch = quick_start_supernet(strategy)
    alphas = [p for n, p in net.named_parameters() if '_arch_' in n]
    weights = [p for n, p in net.named_parameters() if '_arch_' not in n]
    loss = BatchLoss(batch['train'])
    vector = [torch.randn_like(w) for w in weights]
    products = strategy.slots.estimator.products
    at_weights = products.at(lambda: loss(net(loss.images)), weights, alphas)
    hv, mixed = at_weights.hessian_product(vector), at_weights.mixed_product(vector)
    expected_hv, expected_mixed = forward_over_reverse(net, loss, weights, alphas, vector)
    for got, expected in ((hv, expected_hv), (mixed, expected_mixed)):
        got, expected = torch.cat([g.flatten() for g in got]), torch.cat([e.flatten() for e in expected])
        assert float(torch.nn.functional.cosine_similarity(got, expected, 0)) > 0.9999
        assert float(got.norm() / expected.norm()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize('products', ['double_backward', 'finite_difference'])
def test_every_pass_of_an_estimate_sees_the_same_dropout_masks(products):
    """``pdarts+stabilized`` at skip-connect dropout 0.4: the same estimate twice on one batch agrees to
    rounding, and the finite-difference estimate is the exact one's up to its own (kink) error."""
    strategy = make_strategy('pdarts+stabilized', stages=[[3, None, 1, 0, 0.4]], products=products)
    net, batch = quick_start_supernet(strategy)
    dropouts = [m for m in net.modules() if isinstance(m, SkipConnectDropout)]
    assert dropouts
    for dropout in dropouts:
        dropout.p = 0.4
    module = strategy.configure_oneshot_module(ClassifierModule(0.025, 0.0, 0.9, 3e-4))
    module.set_model(net)
    module.train()
    with torch.no_grad():  # the masks are live: two plain passes differ
        assert not torch.equal(net(batch['train'][0]), net(batch['train'][0]))
    weights = [p for n, p in net.named_parameters() if '_arch_' not in n]
    problem = module.bilevel_problem(batch, 0, torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4))
    first, second = strategy.slots.estimator(problem), strategy.slots.estimator(problem)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)
