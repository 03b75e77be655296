"""The honest baseline: one architecture drawn uniformly from the space, no search."""

from __future__ import annotations

from typing import Any

from nni.mutable import Sample
from nni.nas.nn.pytorch import ModelSpace
from nni.nas.strategy import Random

from ..errors import ConfigError, check_number

MAX_DRAWS = 1000
"""Draws before giving up on a space whose constraints (NAS-Bench-101's edge limit) reject them all."""


class RandomArchitecture(Random):
    """Uniform random architectures of a space.

    In a trial, :meth:`sample` draws the one architecture that is retrained in place of a
    searched one: every search variant must beat it at the same retraining budget. In
    ``NasExperiment`` it is NNI's random search (one trained model per draw).

    Parameters
    ----------
    seed
        Seed of the draws.
    """

    def __init__(self, *, seed: int | None = None, **kwargs: Any):
        check_number('seed', seed, integer=True, optional=True)
        super().__init__(seed=seed, **kwargs)

    def sample(self, space: ModelSpace) -> Sample:
        """Draw one architecture: a value for every choice of ``space``, each uniform, drawn again until
        the space's constraints hold (so uniform over the architectures they allow)."""
        for _ in range(MAX_DRAWS):
            architecture: Sample = {}
            for mutable in space.simplify().values():
                mutable.random(memo=architecture, random_state=self._random_state)
            if space.check_contains(architecture) is None:
                return architecture
        raise ConfigError(f"{MAX_DRAWS} random architectures all break the space's constraints: "
                          f'{space.check_contains(architecture)}')
