"""Stabilized DARTS (Bi et al., arXiv 1910.11831): the amended architecture gradient.

DARTS's first-order step drops the implicit term of the hypergradient, and its second-order
step stands ``xi * I`` in for the inverse Hessian; Bi et al. trace DARTS's instability to that
error and use ``eta * H`` instead, so that the term's weight-space direction never opposes the
true one (:class:`~nni_darts_ext.hypergradient.Amended`). It costs two second-derivative
products per architecture step (four extra forward/backward passes).
"""

from __future__ import annotations

from typing import Any

from ..hypergradient import Amended
from ..second_derivatives import second_derivatives
from .darts import ValidatedDARTS


class StabilizedDARTS(ValidatedDARTS):
    """DARTS with the amended architecture gradient, on any NNI model space ``DARTS`` searches.

    Parameters
    ----------
    eta
        The scale of ``eta * H``, the amended term's stand-in for the inverse Hessian.
    products
        ``'finite_difference'`` (default: as cheap in memory as a training step) or
        ``'double_backward'`` (exact, about twice the activation memory).
    **kwargs
        :class:`~nni_darts_ext.strategies.darts.ValidatedDARTS` parameters.
    """

    def __init__(self, *, eta: float = 1e-3, products: str = 'finite_difference', **kwargs: Any):
        super().__init__(architecture_gradient=Amended(eta, second_derivatives(products)), **kwargs)
        self.eta = eta
