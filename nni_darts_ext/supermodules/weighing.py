"""How a mixed operation weighs its candidates in the forward pass: the cells slot's ``weighing``.

NNI hands every differentiable module the strategy's ``configure_softmax()`` module, which turns
its architecture vector into the weights its forward pass mixes the candidates with
(``nni_internals.normalization``); DARTS's is ``nn.Softmax(-1)``. A technique may give another:
:class:`SampledWeighing`, a weighing that draws, as GDAS's Gumbel sampling does. Whatever the
forward pass weighs by, the search reads an architecture (its derivation, its probabilities, the
rows of LA-DARTS's latency term) as ``softmax(alpha)``, the distribution a sampling weighing draws from.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Iterator

from torch import Tensor, nn


class SampledWeighing(nn.Module, ABC):
    """A forward-pass weighing that draws its weights, with a schedule over the search's epochs.

    Attributes
    ----------
    sampling
        ``True``: the forward pass weighs by a draw. ``False``: by ``softmax(alpha)``, as while
        the search reads its probabilities (:func:`reading_probabilities`).
    """

    def __init__(self):
        super().__init__()
        self.sampling = True

    def forward(self, alpha: Tensor) -> Tensor:
        return self.draw(alpha) if self.sampling else alpha.softmax(-1)

    @abstractmethod
    def draw(self, alpha: Tensor) -> Tensor:
        """Weights for one forward pass, differentiable in ``alpha``."""

    @abstractmethod
    def at_epoch(self, epoch: int, epochs: int) -> None:
        """Set the schedule for ``epoch`` (from 0) of a search of ``epochs``."""


def sampled_weighings(network: nn.Module) -> list[SampledWeighing]:
    """Every sampling weighing in ``network`` (NNI gives each mixed operation its own)."""
    return [module for module in network.modules() if isinstance(module, SampledWeighing)]


@contextlib.contextmanager
def reading_probabilities(network: nn.Module) -> Iterator[None]:
    """Inside, every sampling weighing of ``network`` weighs by ``softmax(alpha)`` instead of a draw
    (NNI's ``export_probs`` reads the probabilities through the forward pass's weighing)."""
    weighings = sampled_weighings(network)
    for weighing in weighings:
        weighing.sampling = False
    try:
        yield
    finally:
        for weighing in weighings:
            weighing.sampling = True
