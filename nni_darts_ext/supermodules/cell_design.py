"""The cells slot of a search: what the supernet's mixed operations are, as techniques set it.

Cell properties combine on one cell type: partial channels (PC-DARTS's ``k``) and pruning to the
surviving operations (P-DARTS) give one :class:`~.progressive_cell.ProgressiveCell` with both; a
weighing of the candidates (GDAS's Gumbel sampling, :mod:`~.weighing`) goes to every mixed
operation of any of them, through NNI's ``configure_softmax``. A
factorized family (Scalable-DARTS) holds one vector per factor instead of one per edge over its
operations: it has no partial-channel form and nothing to prune, and a design asking for both is
refused by :meth:`CellDesign.conflict`, naming the techniques.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from torch import nn

from .factorized import FactorizedCell, FactorizedLayer
from .pc_darts import PartialChannelCell, PartialChannelLayer
from .progressive_cell import ProgressiveCell, ProgressiveLayer, SurvivingOperations
from .weighing import DrawnLayer

PROPERTIES = ('k', 'pruned', 'factorized', 'weighing')
"""What techniques set on the cells: partial channels, pruning between stages, factorized candidates,
how the forward pass weighs the candidates."""

FACTORIZED_CELLS_LACK = {
    'k': 'both build the supernet cells, and factorized cells have no partial-channel form',
    'pruned': "P-DARTS prunes each edge's operation vector; factorized cells hold one vector per factor instead",
    'weighing': 'a sampled weighing draws one candidate per edge, and factorized cells weigh each factor by its own softmax',
}
"""Why a property cannot be set on factorized cells."""


@dataclass
class CellDesign:
    """The supernet cells a search builds.

    Attributes
    ----------
    k
        ``None``: every candidate sees all channels; otherwise 1/k of them, and each cell node
        weighs its incoming edges (PC-DARTS's partial channels and edge normalization).
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
    k: int | None = None
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
        if self.pruned:
            return [partial(ProgressiveCell.mutate, surviving=surviving, skip_limit=self.skip_limit, k=self.k),
                    partial(ProgressiveLayer.mutate, surviving=surviving, k=self.k)]
        if self.k is not None:
            return [partial(PartialChannelCell.mutate, k=self.k), partial(PartialChannelLayer.mutate, k=self.k)]
        if self.weighing is not None:  # a free LayerChoice that can run its drawn candidate alone
            return [DrawnLayer.mutate]
        return []
