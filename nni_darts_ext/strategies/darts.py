"""DARTS (Liu et al., ICLR 2019), first order: the search with every slot at DARTS's part, and
NNI's own ``DARTS`` strategy unchanged beside it, the yardstick of every comparison.

``darts`` is :class:`~nni_darts_ext.strategies.search.DifferentiableSearch` with no technique:
NNI's DARTS validated every epoch (NNI's strategy has no validation loader), its cells derived by
the DARTS rule (NNI's own export ranks edges by raw ``alpha``) and its architecture step computed
for the architecture parameters alone (NNI's backward pass also computes every weight's gradient,
only to discard it).
"""

from __future__ import annotations

from typing import Any

from nni.nas.oneshot.pytorch.strategy import DARTS

from ..registry import preset
from .search import DifferentiableSearch


class NNIDARTS(DifferentiableSearch):
    """NNI's own ``DARTS`` strategy, its search unchanged: NNI's first-order step (a backward pass
    to every parameter), NNI's cells and their export (edges ranked by raw ``alpha``). Only the
    per-epoch validation every trial reports is added, and it changes no parameter.
    """

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.slots.estimator = None  # NNI's own step

    def default_mutation_hooks(self):
        return DARTS.default_mutation_hooks(self)


preset('darts', "NNI's first-order DARTS (Liu et al., ICLR 2019), validated every epoch", DifferentiableSearch)
preset('nni-darts', "NNI's own DARTS strategy, unchanged (its step, cells and export), validated every epoch: "
       'the yardstick', NNIDARTS, composable=False)
