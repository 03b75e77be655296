"""Second-order DARTS (Liu et al., ICLR 2019): the architecture gradient through a virtual weight step.

NNI 3.0 ships only the first-order approximation. This strategy differentiates the validation
loss through one step of the weight optimizer (its current learning rate, momentum and weight
decay) (:class:`~nni_darts_ext.hypergradient.SecondOrder`). The paper approximates the mixed
second-derivative product by central finite differences; on a supernet of ReLUs and max-pools
those steps cross kinks and the difference is far from the product
(``benchmarks/second_derivatives_accuracy.py``), so the default here is the exact product
(double backward) and the paper's scheme is an option.
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
        ``'double_backward'`` (default: exact, keeps the gradient's graph) or ``'finite_difference'``
        (the paper's scheme: the memory of a training step, inexact across ReLU and max-pool kinks).
    **kwargs
        :class:`~nni_darts_ext.strategies.darts.ValidatedDARTS` parameters.
    """

    def __init__(self, *, products: str = 'double_backward', **kwargs: Any):
        super().__init__(architecture_gradient=SecondOrder(second_derivatives(products)), **kwargs)
