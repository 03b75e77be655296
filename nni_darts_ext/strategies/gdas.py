"""GDAS (Dong & Yang, CVPR 2019): one candidate per edge, drawn by the Gumbel-max trick.

Each forward pass draws, on every mixed operation, ``h = one_hot(argmax(log softmax(alpha) + g))``
with Gumbel noise ``g``: the sample follows ``softmax(alpha)`` exactly. The backward pass takes
the gradient of ``softmax((log softmax(alpha) + g) / tau)`` in its place (straight through), and
the temperature ``tau`` falls linearly from 10 to 0.1 over the search's epochs, so the relaxed
gradient approaches the discrete choice. By GDAS's rule only the drawn candidate runs: the
others' weights (0 in value) are added to the output without their outputs, so each one's
gradient is the sum of the output's gradient, and only the drawn candidate's weights train.
The architecture is read, derived and priced as every search's, from ``softmax(alpha)``. The
technique fills the cells slot's weighing; it composes with partial channels, pruning, any
estimator and terms.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..errors import ConfigError, check_number, unknown_value
from ..registry import preset
from ..supermodules.weighing import SampledWeighing
from .search import DifferentiableSearch
from .slots import SlotFiller, Technique


PATHS = ('drawn', 'all')
"""Which candidates a mixed operation runs under GDAS's draw: the drawn one, or every one."""


class GumbelMax(SampledWeighing):
    """GDAS's weighing: a one-hot draw from ``softmax(alpha)``, differentiated as the Gumbel-softmax
    at temperature ``tau``, which falls linearly from ``tau_max`` at the first epoch to ``tau_min``
    at the last."""

    def __init__(self, tau_max: float, tau_min: float, runs_drawn_only: bool = True):
        super().__init__(runs_drawn_only)
        self.tau_max, self.tau_min = tau_max, tau_min
        self.tau = tau_max

    def at_epoch(self, epoch: int, epochs: int) -> None:
        self.tau = self.tau_max - (self.tau_max - self.tau_min) * epoch / max(epochs - 1, 1)

    def draw(self, alpha: Tensor) -> Tensor:
        gumbel = -torch.empty_like(alpha).exponential_().log()
        relaxed = ((alpha.log_softmax(-1) + gumbel) / self.tau).softmax(-1)
        one_hot = torch.zeros_like(relaxed).scatter_(-1, relaxed.argmax(-1, keepdim=True), 1.0)
        return one_hot - relaxed.detach() + relaxed

    def extra_repr(self) -> str:
        return (f'tau={self.tau:g}, tau_max={self.tau_max:g}, tau_min={self.tau_min:g}, '
                f'runs_drawn_only={self.runs_drawn_only}')


class GumbelSampling(Technique):
    """The cells slot's weighing: GDAS's Gumbel-max draw of one candidate per mixed operation.

    Parameters
    ----------
    tau_max, tau_min
        The temperature at the first and at the last search epoch (the paper's 10 and 0.1).
    paths
        ``'drawn'`` (GDAS's rule): only the drawn candidate runs. ``'all'``: every candidate runs,
        times its weight of 0 or 1, so ``alpha`` gets the exact straight-through gradient, at
        DARTS's cost; the candidates not drawn are then judged at weights they are not trained at.
    """
    name = 'gdas'

    def __init__(self, *, tau_max: float = 10.0, tau_min: float = 0.1, paths: str = 'drawn'):
        check_number('tau_max', tau_max, strict=True)
        check_number('tau_min', tau_min, strict=True)
        if tau_min > tau_max:
            raise ConfigError(f'tau_min ({tau_min:g}) exceeds tau_max ({tau_max:g}); the temperature falls '
                              'from tau_max to tau_min')
        if paths not in PATHS:
            raise unknown_value('paths', paths, PATHS)
        self.weighing = functools.partial(GumbelMax, tau_max, tau_min, paths == 'drawn')

    def fill(self, slots: SlotFiller) -> None:
        slots.design_cells(weighing=self.weighing)


class GDAS(DifferentiableSearch):
    """DARTS with GDAS's Gumbel-max sampling: :class:`GumbelSampling`'s ``tau_max``, ``tau_min`` and
    ``paths``, and :class:`~nni_darts_ext.strategies.search.DifferentiableSearch`'s options."""
    techniques = (GumbelSampling,)


# the paper's search: Adam lr 3e-4 and weight decay 1e-3 for the architecture, tau from 10 to 0.1
preset('gdas', "GDAS (Dong & Yang, CVPR 2019): one candidate per edge drawn by the Gumbel-max trick, "
       'differentiated as the Gumbel-softmax at a falling temperature', GDAS)
