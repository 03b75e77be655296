"""The cells slot of a search: what the supernet's mixed operations are, as techniques set it.

Cell properties combine on one cell and one layer type: which channels the candidates see (a
channels piece, :mod:`~.channels`: PC-DARTS's partial channels), pruning to the surviving
operations (P-DARTS) and a weighing of the candidates (GDAS's Gumbel sampling,
:mod:`~.weighing`, handed to every mixed operation through NNI's ``configure_softmax``) give one
:class:`~.designed_cell.DesignedCell` and one :class:`~.designed_cell.DesignedLayer` with all of
them; with none set, the search takes NNI's own modules. A factorized family (Scalable-DARTS)
holds one vector per factor instead of one per edge over its operations: it has no
partial-channel form and nothing to prune, and a design asking for both is
refused by :meth:`CellDesign.conflict`, naming the techniques.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from torch import nn

from .channels import Channels
from .designed_cell import DesignedCell, DesignedLayer, SurvivingOperations
from .factorized import FactorizedCell, FactorizedLayer

PROPERTIES = ('channels', 'pruned', 'factorized', 'weighing')
"""What techniques set on the cells: partial channels, pruning between stages, factorized candidates,
how the forward pass weighs the candidates."""

FACTORIZED_CELLS_LACK = {
    'channels': 'both build the supernet cells, and factorized cells have no partial-channel form',
    'pruned': "P-DARTS prunes each edge's operation vector; factorized cells hold one vector per factor instead",
    'weighing': 'a sampled weighing draws one candidate per edge, and factorized cells weigh each factor by its own softmax',
}
"""Why a property cannot be set on factorized cells."""


@dataclass
class CellDesign:
    """The supernet cells a search builds.

    Attributes
    ----------
    channels
        ``None``: every candidate sees all channels. Otherwise the piece that builds and mixes
        the candidates for the channels they see (:class:`~.channels.Channels`: PC-DARTS's 1/k of
        them, with edge normalization).
    pruned
        Each mixed operation holds only the candidates that survived the stages before (P-DARTS).
    skip_limit
        With ``pruned``: the most skip-connects a derived normal cell may hold (``None``: no limit).
    factorized
        Choices whose candidates are ``ACTIVATION+CONV`` products get one vector per factor (Scalable-DARTS).
    weighing
        What makes the module with which each mixed operation's forward pass weighs its candidates
        (``None``: DARTS's ``softmax(alpha)``).
    set_by
        The technique that set each property.
    """
    channels: Channels | None = None
    pruned: bool = False
    skip_limit: int | None = None
    factorized: bool = False
    weighing: Callable[[], nn.Module] | None = None
    set_by: dict[str, str] = field(default_factory=dict)

    def set(self, technique: str, **properties: Any) -> None:
        """Set ``properties`` (from :data:`PROPERTIES`, and ``skip_limit``) for ``technique``."""
        for name, value in properties.items():
            setattr(self, name, value)
            if name in PROPERTIES:
                self.set_by[name] = technique

    def conflict(self) -> tuple[str, str, str] | None:
        """``(technique, other technique, why)`` when the properties cannot share one cell, else ``None``."""
        if not self.factorized:
            return None
        for name, why in FACTORIZED_CELLS_LACK.items():
            if name in self.set_by:
                return self.set_by[name], self.set_by['factorized'], why
        return None

    def candidate_weighing(self) -> nn.Module:
        """A new module for one mixed operation's forward-pass weighing (NNI asks one per module)."""
        return nn.Softmax(-1) if self.weighing is None else self.weighing()

    def hooks(self, surviving: SurvivingOperations) -> list[Callable[..., Any]]:
        """NNI mutation hooks that build these cells (and free ``LayerChoice`` s alike), before NNI's own;
        ``surviving``: the candidates each mixed operation keeps when ``pruned``."""
        if self.factorized:
            return [FactorizedCell.mutate, FactorizedLayer.mutate]
        if not self.pruned and self.channels is None and self.weighing is None:
            return []
        kept = surviving if self.pruned else None
        return [partial(DesignedCell.mutate, surviving=kept, skip_limit=self.skip_limit, channels=self.channels),
                partial(DesignedLayer.mutate, surviving=kept, channels=self.channels)]
