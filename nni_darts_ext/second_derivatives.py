"""Products with second derivatives of a loss, without ever forming a matrix.

The architecture-gradient estimators need two kinds of product with a vector ``v`` over the
weights ``w`` (architecture parameters ``a``):

- ``hessian_product``: ``d2L/dw2 . v`` (a vector over the weights),
- ``mixed_product``: ``d2L/(da dw) . v`` (a vector over the architecture parameters).

Two ways to compute them, same interface:

:class:`DoubleBackward` (the default) differentiates the graph of the gradient itself: exact,
at the cost of keeping that graph (more activation memory) and a slower backward.
:class:`FiniteDifferences` (the DARTS paper's scheme) differentiates the gradient along ``v`` by
central differences, ``(grad L(w + e v) - grad L(w - e v)) / 2e`` with ``e = scale / |v|``: two
ordinary forward/backward passes, no more memory than one training step, and an error of order
``e**2`` only where the loss is smooth. A supernet is not: its ReLUs and max-pools put kinks in
the gradient, a step crosses some of them, and the jump divided by ``2e`` swamps the product, in float64
too. ``benchmarks/second_derivatives_accuracy.py`` measures the error on a real supernet, and
``benchmarks/stabilized_vs_darts.py`` the cost of each.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
from torch import Tensor

from .errors import ConfigError, unknown_value

Loss = Callable[[], Tensor]
"""The loss at the current values of the parameters (a closure over a batch)."""


def gradients(loss: Tensor, wrt: Sequence[Tensor], create_graph: bool = False) -> list[Tensor]:
    """``d loss / d x`` for each ``x`` in ``wrt``; zeros where the loss does not depend on ``x``."""
    grads = torch.autograd.grad(loss, list(wrt), create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(wrt, grads)]


def dot(xs: Sequence[Tensor], ys: Sequence[Tensor]) -> Tensor:
    """The inner product of two vectors stored as lists of tensors."""
    return torch.cat([x.flatten() for x in xs]) @ torch.cat([y.flatten() for y in ys])


def norm(xs: Sequence[Tensor]) -> Tensor:
    return torch.sqrt(sum((x.detach() ** 2).sum() for x in xs))


@contextmanager
def shifted(parameters: Sequence[Tensor], direction: Sequence[Tensor], step: float) -> Iterator[None]:
    """Temporarily move ``parameters`` in place by ``step * direction``; restored bit for bit
    (subtracting the shift again would leave rounding errors behind)."""
    detached = [p.detach() for p in parameters]
    saved = [p.clone() for p in detached]
    torch._foreach_add_(detached, list(direction), alpha=step)  # one call for every tensor, as torch.optim does
    try:
        yield
    finally:
        torch._foreach_copy_(detached, saved)


class SecondDerivatives(ABC):
    """The two products; a subclass says how the gradient is differentiated along ``v``."""

    def hessian_product(self, loss: Loss, weights: Sequence[Tensor], alphas: Sequence[Tensor],
                        vector: Sequence[Tensor]) -> list[Tensor]:
        """``d2L/dw2 . v``."""
        return self.derivative_along(loss, weights, vector, wrt=weights)

    def mixed_product(self, loss: Loss, weights: Sequence[Tensor], alphas: Sequence[Tensor],
                      vector: Sequence[Tensor]) -> list[Tensor]:
        """``d2L/(da dw) . v``."""
        return self.derivative_along(loss, weights, vector, wrt=alphas)

    @abstractmethod
    def derivative_along(self, loss: Loss, weights: Sequence[Tensor], vector: Sequence[Tensor],
                         wrt: Sequence[Tensor]) -> list[Tensor]:
        """The derivative of ``dL/d(wrt)`` as the weights move along ``vector``."""


class FiniteDifferences(SecondDerivatives):
    """Central differences of the gradient along the vector: two passes per product.

    Parameters
    ----------
    scale
        The step is ``scale / |v|`` (DARTS: 0.01).
    """

    def __init__(self, scale: float = 0.01):
        if not scale > 0:
            raise ConfigError(f'the finite-difference scale must be positive, got {scale}')
        self.scale = scale

    def derivative_along(self, loss: Loss, weights: Sequence[Tensor], vector: Sequence[Tensor],
                         wrt: Sequence[Tensor]) -> list[Tensor]:
        length = float(norm(vector))
        if length == 0.0:
            return [torch.zeros_like(x) for x in wrt]
        step = self.scale / length
        with shifted(weights, vector, step):
            plus = gradients(loss(), wrt)
        with shifted(weights, vector, -step):
            minus = gradients(loss(), wrt)
        return [(p - m) / (2 * step) for p, m in zip(plus, minus)]


class DoubleBackward(SecondDerivatives):
    """Exact products: differentiate ``(dL/dw) . v`` once more (keeps the gradient's graph)."""

    def derivative_along(self, loss: Loss, weights: Sequence[Tensor], vector: Sequence[Tensor],
                         wrt: Sequence[Tensor]) -> list[Tensor]:
        weight_gradient = gradients(loss(), weights, create_graph=True)
        directional = dot(weight_gradient, [v.detach() for v in vector])
        if not directional.requires_grad:  # the loss is linear in the weights
            return [torch.zeros_like(x) for x in wrt]
        try:
            return [g.detach() for g in gradients(directional, wrt)]
        except RuntimeError as error:
            if 'is not implemented' not in str(error):
                raise
            # torch has no second derivative for some layers (hard-sigmoid, hard-swish)
            raise ConfigError(f'products: double_backward needs second derivatives of every layer, and torch says '
                              f'"{error}"; set products to finite_difference') from error


PRODUCTS = {'finite_difference': FiniteDifferences, 'double_backward': DoubleBackward}
"""The names a user may give for how second-derivative products are computed."""


def second_derivatives(name: str) -> SecondDerivatives:
    """The products named ``name`` (a key of :data:`PRODUCTS`)."""
    if name not in PRODUCTS:
        raise unknown_value('second-derivative products', name, PRODUCTS)
    return PRODUCTS[name]()
