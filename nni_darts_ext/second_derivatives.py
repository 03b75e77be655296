"""Products with second derivatives of a loss, without ever forming a matrix.

The architecture-gradient estimators need two kinds of product with a vector ``v`` over the
weights ``w`` (architecture parameters ``a``):

- ``hessian_product``: ``d2L/dw2 . v`` (a vector over the weights),
- ``mixed_product``: ``d2L/(da dw) . v`` (a vector over the architecture parameters).

``SecondDerivatives.at(loss, weights, alphas)`` gives both (and ``dL/dw``) for the loss at the
weights as they are, as :class:`Products`. Two ways to compute them:

:class:`DoubleBackward` (the default) differentiates the graph of the gradient itself: exact,
at the cost of keeping that graph (more activation memory) and a slower backward. One forward
pass and one graph-keeping backward serve every product at the same weights; each product is
one more backward pass through the kept graph.
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
from .supermodules.second_order_convolution import kept_for_second_derivatives

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
    """The Euclidean norm of a vector stored as a list of tensors (one call for every tensor)."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm([x.detach() for x in xs])))


@contextmanager
def shifted(parameters: Sequence[Tensor], direction: Sequence[Tensor], step: float) -> Iterator[None]:
    """Temporarily move ``parameters`` in place by ``step * direction``; restored bit for bit
    (subtracting the shift again would leave rounding errors behind).

    The shift goes through ``.data``, which autograd does not version: a graph built before the
    shift, which saved the parameters, stays valid once they are restored (differentiate it only
    after the ``with`` block; inside, it would read the shifted values)."""
    values = [p.data for p in parameters]
    saved = [v.clone() for v in values]
    torch._foreach_add_(values, list(direction), alpha=step)  # one call for every tensor, as torch.optim does
    try:
        yield
    finally:
        torch._foreach_copy_(values, saved)


class Products(ABC):
    """The second-derivative products of one loss at the weights as they are when it is made.

    ``weights`` and ``alphas`` must not change while it is in use (a shift by :func:`shifted`,
    undone before the next product, is allowed)."""

    @abstractmethod
    def weight_gradient(self) -> list[Tensor]:
        """``dL/dw``."""

    @abstractmethod
    def hessian_product(self, vector: Sequence[Tensor]) -> list[Tensor]:
        """``d2L/dw2 . v``."""

    @abstractmethod
    def mixed_product(self, vector: Sequence[Tensor]) -> list[Tensor]:
        """``d2L/(da dw) . v``."""


class SecondDerivatives(ABC):
    """A way of computing the products: :meth:`at` gives them for a loss at the current weights."""

    @abstractmethod
    def at(self, loss: Loss, weights: Sequence[Tensor], alphas: Sequence[Tensor]) -> Products:
        """The products of ``loss`` over ``weights`` (and ``alphas``) at their current values."""


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

    def at(self, loss: Loss, weights: Sequence[Tensor], alphas: Sequence[Tensor]) -> Products:
        return CentralDifferences(self.scale, loss, list(weights), list(alphas))


class CentralDifferences(Products):
    """:class:`FiniteDifferences`'s products: each its own two passes, at the weights shifted either way."""

    def __init__(self, scale: float, loss: Loss, weights: list[Tensor], alphas: list[Tensor]):
        self.scale, self.loss, self.weights, self.alphas = scale, loss, weights, alphas

    def weight_gradient(self) -> list[Tensor]:
        return gradients(self.loss(), self.weights)  # a pass of its own

    def hessian_product(self, vector: Sequence[Tensor]) -> list[Tensor]:
        return self._along(vector, self.weights)

    def mixed_product(self, vector: Sequence[Tensor]) -> list[Tensor]:
        return self._along(vector, self.alphas)

    def _along(self, vector: Sequence[Tensor], wrt: list[Tensor]) -> list[Tensor]:
        """The derivative of ``dL/d(wrt)`` as the weights move along ``vector``."""
        length = float(norm(vector))
        if length == 0.0:
            return [torch.zeros_like(x) for x in wrt]
        step = self.scale / length
        with shifted(self.weights, vector, step):
            plus = gradients(self.loss(), wrt)
        with shifted(self.weights, vector, -step):
            minus = gradients(self.loss(), wrt)
        return torch._foreach_div(torch._foreach_sub(plus, minus), 2 * step)


class DoubleBackward(SecondDerivatives):
    """Exact products: differentiate ``(dL/dw) . v`` once more. One forward pass and one backward
    pass that keeps its graph serve every product at the same weights (more memory than a plain
    backward, and each product a backward pass through that graph). The forward pass builds the
    cells' batched convolutions with derivatives of their own
    (:mod:`~nni_darts_ext.supermodules.second_order_convolution`)."""

    def at(self, loss: Loss, weights: Sequence[Tensor], alphas: Sequence[Tensor]) -> Products:
        with kept_for_second_derivatives():
            value = loss()
        return GradientGraph(value, list(weights), list(alphas))


class GradientGraph(Products):
    """:class:`DoubleBackward`'s products: the graph of ``dL/dw``, kept for as long as this lives."""

    def __init__(self, loss: Tensor, weights: list[Tensor], alphas: list[Tensor]):
        self.weights, self.alphas = weights, alphas
        self.gradient = gradients(loss, weights, create_graph=True)
        # the gradients that depend on the parameters; the rest (zero, or the loss linear in them) add nothing
        self.differentiable = [i for i, g in enumerate(self.gradient) if g.requires_grad]

    def weight_gradient(self) -> list[Tensor]:
        return [g.detach() for g in self.gradient]

    def hessian_product(self, vector: Sequence[Tensor]) -> list[Tensor]:
        return self._along(vector, self.weights)

    def mixed_product(self, vector: Sequence[Tensor]) -> list[Tensor]:
        return self._along(vector, self.alphas)

    def _along(self, vector: Sequence[Tensor], wrt: list[Tensor]) -> list[Tensor]:
        """``d/d(wrt) ((dL/dw) . v)``: a vector-Jacobian product of the kept gradient."""
        if not self.differentiable:
            return [torch.zeros_like(x) for x in wrt]
        try:
            products = torch.autograd.grad([self.gradient[i] for i in self.differentiable], wrt,
                                           grad_outputs=[vector[i].detach() for i in self.differentiable],
                                           retain_graph=True, allow_unused=True)
        except RuntimeError as error:
            if 'is not implemented' not in str(error):
                raise
            # torch has no second derivative for some layers (hard-sigmoid, hard-swish)
            raise ConfigError(f'products: double_backward needs second derivatives of every layer, and torch says '
                              f'"{error}"; set products to finite_difference') from error
        return [torch.zeros_like(x) if p is None else p for x, p in zip(wrt, products)]


PRODUCTS = {'finite_difference': FiniteDifferences, 'double_backward': DoubleBackward}
"""The names a user may give for how second-derivative products are computed."""


def second_derivatives(name: str) -> SecondDerivatives:
    """The products named ``name`` (a key of :data:`PRODUCTS`)."""
    if name not in PRODUCTS:
        raise unknown_value('second-derivative products', name, PRODUCTS)
    return PRODUCTS[name]()
