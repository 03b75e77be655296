"""PC-DARTS (Xu et al., ICLR 2020): partial-channel connections and edge normalization.

Sampling 1/K of the channels on every edge cuts the supernet's memory and compute by about K,
which buys larger batches and a faster, steadier search; edge normalization (a learned weight
per incoming edge of a node) offsets the noise the channel sampling adds to edge selection.
The technique sets partial channels on the cells slot; the search loop is DARTS's (first order).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, check_number
from ..registry import preset
from ..supermodules.partial_channel import ChannelSplit
from .search import DifferentiableSearch
from .slots import SlotFiller, Technique


class PartialChannels(Technique):
    """The cells slot: partial-channel edges with edge normalization, on any NNI model space with
    ``Cell``, ``LayerChoice``, ``InputChoice``.

    Parameters
    ----------
    k
        1/k of each edge's channels go through the candidate operations (paper: 4 on CIFAR,
        2 on ImageNet). Every convolution and batch norm inside a candidate must have a
        channel count divisible by k; otherwise the supernet is not built and a
        :class:`~nni_darts_ext.errors.ConfigError` names the operation (no silent fallback to
        full channels, which would change the algorithm behind the user's back).
    """
    name = 'pcdarts'

    def __init__(self, *, k: int = 4):
        check_number('k', k, integer=True, strict=True)
        self.k = k

    def fill(self, slots: SlotFiller) -> None:
        slots.design_cells(channels=ChannelSplit(self.k))

    def check_supernet(self, supernet: Any) -> None:
        if not any(isinstance(getattr(module, 'channels', None), ChannelSplit) for module in supernet.modules()):
            raise ConfigError('pcdarts found no choice among operations (an NNI Cell or a LayerChoice) to give partial '
                              'channels, so it would search as darts does: search this space with darts')


class PCDARTS(DifferentiableSearch):
    """Partially-connected DARTS: :class:`PartialChannels`'s ``k`` and
    :class:`~nni_darts_ext.strategies.search.DifferentiableSearch`'s options (``arc_learning_rate``,
    ``warmup_epochs``: the paper freezes the architecture for its first 15 of 50 epochs)."""
    techniques = (PartialChannels,)


# the paper's CIFAR-10 search: K=4, Adam lr 6e-4, architecture frozen for 15 of 50 epochs
preset('pcdarts', 'PC-DARTS (Xu et al., ICLR 2020): partial-channel edges and edge normalization', PCDARTS,
       arc_learning_rate=6e-4, warmup_epochs=15)
