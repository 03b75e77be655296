"""Second-order DARTS (Liu et al., ICLR 2019): the architecture gradient through a virtual weight step.

NNI 3.0 ships only the first-order approximation. This technique fills the estimator slot with
the gradient of the validation loss through one step of the weight optimizer (its current
learning rate, momentum and weight decay) (:class:`~nni_darts_ext.hypergradient.SecondOrder`).
The paper approximates the mixed second-derivative product by central finite differences; on a
supernet of ReLUs and max-pools those steps cross kinks and the difference is far from the
product (``benchmarks/second_derivatives_accuracy.py``), so the default here is the exact product
(double backward) and the paper's scheme is an option.
"""

from __future__ import annotations

from ..hypergradient import SecondOrder
from ..registry import preset
from ..second_derivatives import second_derivatives
from .search import DifferentiableSearch
from .slots import SlotFiller, Technique


class UnrolledGradient(Technique):
    """The estimator slot: the second-order (unrolled) architecture gradient.

    Parameters
    ----------
    products
        ``'double_backward'`` (default: exact, keeps the gradient's graph) or ``'finite_difference'``
        (the paper's scheme: the memory of a training step, inexact across ReLU and max-pool kinks).
    """
    name = 'darts2'

    def __init__(self, *, products: str = 'double_backward'):
        self.estimator = SecondOrder(second_derivatives(products))

    def fill(self, slots: SlotFiller) -> None:
        slots.set_estimator(self.estimator)


class SecondOrderDARTS(DifferentiableSearch):
    """Unrolled DARTS on any NNI model space ``DARTS`` searches: :class:`UnrolledGradient`'s
    ``products`` and :class:`~nni_darts_ext.strategies.search.DifferentiableSearch`'s options."""
    techniques = (UnrolledGradient,)


preset('darts2', 'second-order DARTS (Liu et al., ICLR 2019): the gradient through a virtual weight step',
       SecondOrderDARTS)
