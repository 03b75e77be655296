"""PC-DARTS (Xu et al., ICLR 2020): partial-channel connections and edge normalization.

Sampling 1/K of the channels on every edge cuts the supernet's memory and compute by about K,
which buys larger batches and a faster, steadier search; edge normalization (a learned weight
per incoming edge of a node) offsets the noise the channel sampling adds to edge selection.
The search loop is DARTS's (first order); only the supernet modules differ.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..errors import ConfigError, check_number
from ..supermodules.partial_channel import SplitsChannels
from ..supermodules.pc_darts import PartialChannelCell, PartialChannelLayer
from .darts import ValidatedDARTS


class PCDARTS(ValidatedDARTS):
    """Partially-connected DARTS on any NNI model space with ``Cell``, ``LayerChoice``, ``InputChoice``.

    Parameters
    ----------
    k
        1/k of each edge's channels go through the candidate operations (paper: 4 on CIFAR,
        2 on ImageNet). Every convolution and batch norm inside a candidate must have a
        channel count divisible by k; otherwise the supernet is not built and a
        :class:`~nni_darts_ext.errors.ConfigError` names the operation (no silent fallback to
        full channels, which would change the algorithm behind the user's back).
    **kwargs
        :class:`~nni_darts_ext.strategies.darts.ValidatedDARTS` parameters (``arc_learning_rate``,
        ``warmup_epochs``: the paper freezes the architecture for its first 15 of 50 epochs).
    """

    def __init__(self, *, k: int = 4, **kwargs: Any):
        check_number('k', k, integer=True, strict=True)
        super().__init__(**kwargs)
        self.k = k

    def default_mutation_hooks(self):
        # before the others' hooks: the first that takes a module wins
        return [partial(PartialChannelCell.mutate, k=self.k), partial(PartialChannelLayer.mutate, k=self.k),
                *super().default_mutation_hooks()]

    def mutate_model(self, model):
        supernet = super().mutate_model(model)
        if not any(isinstance(module, SplitsChannels) and module.k for module in supernet.modules()):
            raise ConfigError('pcdarts found no choice among operations (an NNI Cell or a LayerChoice) to give partial '
                              'channels, so it would search as darts does: search this space with darts')
        return supernet

    def cell_options(self) -> dict[str, Any]:
        return {**super().cell_options(), 'k': self.k}
