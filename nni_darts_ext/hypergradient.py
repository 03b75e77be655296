"""Estimators of the architecture gradient of the DARTS bilevel problem.

DARTS trains weights ``w`` on the training loss and architecture parameters ``a`` on the
validation loss at the trained weights, ``w*(a) = argmin_w L_train(w, a)``. The true
architecture gradient (the hypergradient) is, by the implicit function theorem::

    dL_val/da = grad_a L_val  -  d2L_train/(da dw) . H^-1 . grad_w L_val,    H = d2L_train/dw2

Each estimator here replaces the second (implicit) term differently:

- :class:`FirstOrder` drops it (DARTS first order, NNI's DARTS);
- :class:`SecondOrder` differentiates through one virtual weight step ``w' = w - xi * step``
  (DARTS second order): in effect ``H^-1 ~ xi * I``, evaluated after the step;
- :class:`Amended` replaces ``H^-1`` by ``eta * H`` (Bi et al., arXiv 1910.11831). For a
  positive semi-definite ``H``, ``<H u, H^-1 u> = |u|^2 >= 0``: the vector the implicit term
  maps to the architecture space never points away from the true one's.

An estimator is a callable ``estimator(problem) -> gradient per architecture parameter`` over a
:class:`BilevelProblem`, so the same code serves a supernet and a closed-form test problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from .errors import check_number
from .second_derivatives import DoubleBackward, Loss, SecondDerivatives, gradients, shifted


@dataclass
class InnerStep:
    """The weight optimizer's step, for the virtual step of second-order DARTS.

    ``direction`` is what SGD subtracts (times the learning rate):
    ``momentum * buffer + gradient + weight_decay * w``.
    """
    learning_rate: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    momentum_buffers: list[Tensor | None] = field(default_factory=list)

    @classmethod
    def of(cls, optimizer: torch.optim.Optimizer, weights: Sequence[Tensor]) -> InnerStep:
        """Read learning rate, momentum, weight decay and buffers from a (single-group) optimizer.

        Exact for SGD; for another optimizer, its learning rate and a plain gradient step.
        """
        group = optimizer.param_groups[0]
        return cls(float(group['lr']), float(group.get('momentum', 0.0)), float(group.get('weight_decay', 0.0)),
                   [optimizer.state.get(w, {}).get('momentum_buffer') for w in weights])

    def direction(self, weights: Sequence[Tensor], weight_gradients: Sequence[Tensor]) -> list[Tensor]:
        direction = torch._foreach_add(list(weight_gradients), [w.detach() for w in weights], alpha=self.weight_decay)
        buffered = [(d, b) for d, b in zip(direction, self.momentum_buffers) if b is not None]
        if buffered:
            torch._foreach_add_([d for d, _ in buffered], [b for _, b in buffered], alpha=self.momentum)
        return direction


def same_draws(loss: Loss) -> Loss:
    """``loss`` whose every call draws the same random numbers (dropout masks, drop-path, sampled
    paths): every pass of one estimate then sees one network. Passes that each draw anew would
    make a finite difference the difference of two random draws, divided by a small step.

    The seed is taken from the global generator once, here, so two such losses draw differently
    from each other; each call runs in a forked generator and leaves the global one as it was.
    """
    seed = int(torch.randint(2 ** 62, ()))
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()

    def replayed() -> Tensor:
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.manual_seed(seed)
            return loss()

    return replayed


@dataclass
class BilevelProblem:
    """One architecture step: the parameters, the two losses at their current values, the weight step.

    ``train_loss`` and ``val_loss`` are closures over a training and a validation batch; the
    estimators move ``weights`` in place (and back) between calls, and take every closure as a
    deterministic function of the parameters: wrap a loss that draws random numbers in
    :func:`same_draws`.
    """
    weights: list[Tensor]
    alphas: list[Tensor]
    train_loss: Loss
    val_loss: Loss
    inner_step: InnerStep


class FirstOrder:
    """``grad_a L_val`` at the current weights: the implicit term dropped."""

    def __call__(self, problem: BilevelProblem) -> list[Tensor]:
        return gradients(problem.val_loss(), problem.alphas)


class SecondOrder:
    """Unrolled DARTS: the gradient of ``L_val(w - xi * step(w, a), a)``, ``xi`` the current learning rate.

    ``grad_a L_val(w') - xi * d2L_train/(da dw)(w) . grad_w' L_val(w')``, the mixed product taken
    at the current weights as in the DARTS paper. The training gradient that makes the virtual step
    and the mixed product come from one set of products at ``w`` (with exact products: one forward
    and one backward pass, whose graph is kept through the validation pass at ``w'``).
    """

    def __init__(self, products: SecondDerivatives | None = None):
        self.products = products or DoubleBackward()

    def __call__(self, problem: BilevelProblem) -> list[Tensor]:
        weights, alphas, step = problem.weights, problem.alphas, problem.inner_step
        training = self.products.at(problem.train_loss, weights, alphas)
        direction = step.direction(weights, training.weight_gradient())
        with shifted(weights, direction, -step.learning_rate):
            unrolled = gradients(problem.val_loss(), alphas + weights)
        alpha_gradient, weight_gradient = unrolled[:len(alphas)], unrolled[len(alphas):]
        implicit = training.mixed_product(weight_gradient)
        return torch._foreach_add(alpha_gradient, implicit, alpha=-step.learning_rate)


class Amended:
    """Bi et al.'s amended gradient: ``grad_a L_val - eta * d2L_train/(da dw) . (H . grad_w L_val)``.

    ``H`` is the Hessian of the objective the weight optimizer minimises: the training loss
    plus its weight decay, ``weight_decay / 2 * |w|^2`` (adding ``weight_decay * v`` to ``H v``).
    Both products are the training loss's at the same weights: with exact products, one forward
    and one backward pass serve them.

    Parameters
    ----------
    eta
        The scale that stands in for the inverse Hessian's size.
    products
        How the two second-derivative products are computed.
    """

    def __init__(self, eta: float, products: SecondDerivatives | None = None):
        check_number('eta', eta)
        self.eta = eta
        self.products = products or DoubleBackward()

    def __call__(self, problem: BilevelProblem) -> list[Tensor]:
        weights, alphas = problem.weights, problem.alphas
        direct = gradients(problem.val_loss(), alphas + weights)
        alpha_gradient, weight_gradient = direct[:len(alphas)], direct[len(alphas):]
        training = self.products.at(problem.train_loss, weights, alphas)
        curvature = training.hessian_product(weight_gradient)
        torch._foreach_add_(curvature, weight_gradient, alpha=problem.inner_step.weight_decay)
        implicit = training.mixed_product(curvature)
        return torch._foreach_add(alpha_gradient, implicit, alpha=-self.eta)
