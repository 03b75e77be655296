"""The honest baseline: one architecture drawn uniformly from the space, no search."""

from __future__ import annotations

from typing import Any

from nni.mutable import Sample
from nni.nas.nn.pytorch import ModelSpace
from nni.nas.strategy import Random

from ..errors import ConfigError, check_number
from ..nni_internals import random_state
from ..registry import Variant, register

MAX_DRAWS = 1000
"""Draws before giving up on a space whose constraints (NAS-Bench-101's edge limit) reject them all."""


class RandomArchitecture(Random):
    """Uniform random architectures of a space (a :class:`~nni_darts_ext.strategies.search.TrialStrategy`
    that does not search).

    In a trial, :meth:`sample` draws the one architecture that is retrained in place of a
    searched one: every search variant must beat it at the same retraining budget. In
    ``NasExperiment`` it is NNI's random search (one trained model per draw).

    Parameters
    ----------
    seed
        Seed of the draws.
    """

    searches = False
    deploys = False
    arc_learning_rate = None  # no architecture parameters

    def __init__(self, *, seed: int | None = None, **kwargs: Any):
        check_number('seed', seed, integer=True, optional=True)
        super().__init__(seed=seed, **kwargs)

    def sample(self, space: ModelSpace) -> Sample:
        """Draw one architecture: a value for every choice of ``space``, each uniform, drawn again until
        the space's constraints hold (so uniform over the architectures they allow)."""
        for _ in range(MAX_DRAWS):
            architecture: Sample = {}
            for mutable in space.simplify().values():
                mutable.random(memo=architecture, random_state=random_state(self))
            if space.check_contains(architecture) is None:
                return architecture
        raise ConfigError(f"{MAX_DRAWS} random architectures all break the space's constraints: "
                          f'{space.check_contains(architecture)}')

    def architecture_epochs(self, search_epochs: int) -> int:
        """No architecture steps."""
        return 0

    def check_trial(self, search_epochs: int, early_stop: str) -> None:
        """Any budget: nothing searches."""

    def deploy(self, space: Any, input_shape: tuple[int, ...]) -> None:
        """Nothing to time: the draw does not depend on latency."""

    def search_summary(self, found: Sample) -> dict[str, Any]:
        """Nothing: no search."""
        return {}


register(Variant('random', 'one uniformly random architecture of the same space, no search: the baseline',
                 RandomArchitecture, options=('seed',), composable=False))
