"""Stabilized DARTS (Bi et al., arXiv 1910.11831): the amended architecture gradient.

DARTS's first-order step drops the implicit term of the hypergradient, and its second-order
step stands ``xi * I`` in for the inverse Hessian; Bi et al. trace DARTS's instability to that
error and use ``eta * H`` instead, so that the term's weight-space direction never opposes the
true one (:class:`~nni_darts_ext.hypergradient.Amended`). This technique fills the estimator slot
with it. It costs two second-derivative products per architecture step, exact by default (double
backward): finite differences cross the supernet's ReLU and max-pool kinks and miss ``H u`` by
far (``benchmarks/second_derivatives_accuracy.py``).
"""

from __future__ import annotations

from ..hypergradient import Amended
from ..registry import preset
from ..second_derivatives import second_derivatives
from .search import DifferentiableSearch
from .slots import SlotFiller, Technique


class AmendedGradient(Technique):
    """The estimator slot: the amended architecture gradient.

    Parameters
    ----------
    eta
        The scale of ``eta * H``, the amended term's stand-in for the inverse Hessian: the two have
        the same size along the validation gradient ``u`` when ``eta = (|u| / |H u|)^2``, about
        0.16 on the quick-start supernet (``benchmarks/second_derivatives_accuracy.py``). At that
        size the amended term outweighs the validation gradient; at the default, 0.01, it is a
        correction of it (0.02 to 0.5 of its size), chosen by measurement on NAS-Bench-201's ground
        truth (``benchmarks/README.md``).
    products
        ``'double_backward'`` (default: exact, keeps the gradient's graph) or ``'finite_difference'``
        (the memory of a training step, inexact across ReLU and max-pool kinks).
    """
    name = 'stabilized'

    def __init__(self, *, eta: float = 0.01, products: str = 'double_backward'):
        self.estimator = Amended(eta, second_derivatives(products))

    def fill(self, slots: SlotFiller) -> None:
        slots.set_estimator(self.estimator)


class StabilizedDARTS(DifferentiableSearch):
    """DARTS with the amended architecture gradient, on any NNI model space ``DARTS`` searches:
    :class:`AmendedGradient`'s ``eta`` and ``products`` and
    :class:`~nni_darts_ext.strategies.search.DifferentiableSearch`'s options."""
    techniques = (AmendedGradient,)


preset('stabilized', 'Stabilized DARTS (Bi et al., arXiv 1910.11831): the amended architecture gradient',
       StabilizedDARTS)
