"""Stabilized DARTS (Bi et al., arXiv 1910.11831): the amended architecture gradient.

DARTS's first-order step drops the implicit term of the hypergradient, and its second-order
step stands ``xi * I`` in for the inverse Hessian; Bi et al. trace DARTS's instability to that
error and use ``eta * H`` instead, so that the term's weight-space direction never opposes the
true one (:class:`~nni_darts_ext.hypergradient.Amended`). It costs two second-derivative
products per architecture step, exact by default (double backward): finite differences cross
the supernet's ReLU and max-pool kinks and miss ``H u`` by far
(``benchmarks/second_derivatives_accuracy.py``).
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
        The scale of ``eta * H``, the amended term's stand-in for the inverse Hessian: the two have
        the same size along the validation gradient ``u`` when ``eta = (|u| / |H u|)^2``.
        ``benchmarks/second_derivatives_accuracy.py`` measures ``|H u| / |u|`` on a supernet;
        the default is the quick-start supernet's (see ``benchmarks/README.md``).
    products
        ``'double_backward'`` (default: exact, keeps the gradient's graph) or ``'finite_difference'``
        (the memory of a training step, inexact across ReLU and max-pool kinks).
    **kwargs
        :class:`~nni_darts_ext.strategies.darts.ValidatedDARTS` parameters.
    """

    def __init__(self, *, eta: float = 0.1, products: str = 'double_backward', **kwargs: Any):
        super().__init__(architecture_gradient=Amended(eta, second_derivatives(products)), **kwargs)
        self.eta = eta
