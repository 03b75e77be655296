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

from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer
from torch import Tensor, nn

from ..nni_internals import forward_weights, normalization, weighted_sum
from .batched_edges import mix_edges


class SampledWeighing(nn.Module, ABC):
    """A forward-pass weighing that draws its weights, with a schedule over the search's epochs.

    Attributes
    ----------
    sampling
        ``True``: the forward pass weighs by a draw. ``False``: by ``softmax(alpha)``, as while
        the search reads its probabilities (:func:`reading_probabilities`).
    runs_drawn_only
        Whether a mixed operation runs only the candidate its one-hot draw names
        (:func:`drawn_index`), adding the other candidates' weights without their outputs.
    """

    def __init__(self, runs_drawn_only: bool = False):
        super().__init__()
        self.sampling = True
        self.runs_drawn_only = runs_drawn_only

    def forward(self, alpha: Tensor) -> Tensor:
        return self.draw(alpha) if self.sampling else alpha.softmax(-1)

    @abstractmethod
    def draw(self, alpha: Tensor) -> Tensor:
        """Weights for one forward pass, differentiable in ``alpha``."""

    @abstractmethod
    def at_epoch(self, epoch: int, epochs: int) -> None:
        """Set the schedule for ``epoch`` (from 0) of a search of ``epochs``."""


def drawn_index(weighing: nn.Module, weights: Tensor) -> int | None:
    """The candidate a mixed operation runs alone, given the ``weights`` its ``weighing`` drew:
    ``None`` (every candidate runs) unless the weighing samples and runs its draw alone."""
    if isinstance(weighing, SampledWeighing) and weighing.sampling and weighing.runs_drawn_only:
        return int(weights.argmax())
    return None


def layer_weights(layer: nn.Module) -> tuple[Tensor, int | None]:
    """A mixed layer's forward weights for one pass, and the candidate it runs alone (:func:`drawn_index`)."""
    weights = forward_weights(layer)
    return weights, drawn_index(normalization(layer), weights)


def mixed_layer_output(layer: DifferentiableMixedLayer, args: tuple, kwargs: dict) -> Tensor:
    """A differentiable ``LayerChoice`` 's output: the drawn candidate alone under a weighing that
    runs its draw alone (:func:`~.batched_edges.mix_edges`), else NNI's mixture of every candidate."""
    weights, chosen = layer_weights(layer)
    if chosen is None or kwargs or len(args) != 1:
        return weighted_sum(layer, [layer[name](*args, **kwargs) for name in layer.names], weights)
    return mix_edges(args, [[layer[name] for name in layer.names]], [weights], [chosen])


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
