"""Second-order DARTS (Liu et al., ICLR 2019): the architecture gradient through a virtual weight step.

NNI 3.0 ships only the first-order approximation. This strategy differentiates the validation
loss through one step of the weight optimizer (its current learning rate, momentum and weight
decay), with the paper's finite-difference Hessian-vector product
(:class:`~nni_darts_ext.hypergradient.SecondOrder`).
"""

from __future__ import annotations

from typing import Any

from ..hypergradient import SecondOrder
from ..second_derivatives import second_derivatives
from .darts import ValidatedDARTS


class SecondOrderDARTS(ValidatedDARTS):
    """Unrolled DARTS on any NNI model space ``DARTS`` searches.

    Parameters
    ----------
    products
        ``'finite_difference'`` (the paper's, default) or ``'double_backward'`` (exact, more memory).
    **kwargs
        :class:`~nni_darts_ext.strategies.darts.ValidatedDARTS` parameters.
    """

    def __init__(self, *, products: str = 'finite_difference', **kwargs: Any):
        super().__init__(architecture_gradient=SecondOrder(second_derivatives(products)), **kwargs)
