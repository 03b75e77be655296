"""A named model space that can be built at any size: the search size, the evaluation size,
or (for progressive strategies) anything between."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn
from nni.nas.nn.pytorch import ModelSpace

from ..errors import ConfigError

MAX_CELLS = 100
"""The deepest network a trial builds; DARTS retrains 20 cells, NAS-Bench-201's largest has 15."""

MAX_CANDIDATES = 50_000
"""The most candidate operations a supernet may hold. DARTS's 20-cell space holds 2,240; a
candidate takes about 0.3 ms to build on a CPU core, so this many build in about 15 s."""


@dataclass(frozen=True)
class Size:
    """Width (channels of the first cells' operations) and depth (number of cells)."""
    width: int
    cells: int


@dataclass(frozen=True)
class Regularization:
    """What a retrained network carries besides its architecture (DARTS's evaluation network).

    Attributes
    ----------
    drop_path
        The largest drop-path rate: NNI's ``DropPath`` after every operation but the identity,
        built at this rate (a schedule changes it during training; evaluation never drops).
    auxiliary_head
        A second classifier on the cell at 2/3 depth: the network's training forward returns
        ``(logits, auxiliary logits)``; its evaluation forward, the logits alone.
    """
    drop_path: float = 0.0
    auxiliary_head: bool = False


@dataclass(frozen=True)
class Space:
    """A model space description that builds NNI ``ModelSpace`` s of a given size.

    Attributes
    ----------
    name
        How the user named it (``darts_small``, ``nni:DARTS``, a path).
    build
        ``build(size, affine, regularization=Regularization()) -> ModelSpace``; ``affine``
        turns on learnable batch-norm scale and shift (off while searching, as in DARTS; on
        when retraining).
    search, evaluation
        The sizes used for the search and for retraining the found architecture.
    input_channels
        The channel count the space's stem expects.
    sized
        Which of a size's ``width`` and ``cells`` the space's constructor takes (some of NNI's hub
        spaces search their depth, or have a fixed size).
    regularized
        Whether ``build`` honours a :class:`Regularization` (the cell spaces do; the others
        only build the default one).
    candidates_per_cell
        How many candidate operations each cell's supernet holds, where the space knows it.
    """
    name: str
    build: Callable[[Size, bool, Regularization], ModelSpace]
    search: Size
    evaluation: Size
    input_channels: int
    sized: tuple[str, ...] = ('width', 'cells')
    regularized: bool = False
    candidates_per_cell: int | None = None

    def check_size(self, size: Size, where: str) -> None:
        """Refuse a size that cannot be built in a reasonable time, before building it: more than
        :data:`MAX_CELLS` cells, or (for a space that counts them) more than
        :data:`MAX_CANDIDATES` candidate operations. ``where`` names the setting."""
        if 'cells' not in self.sized:
            return
        if size.cells > MAX_CELLS:
            raise ConfigError(f'{where} ({size.cells}) exceeds {MAX_CELLS}, the deepest network this package builds; '
                              f'accepted: 1 to {MAX_CELLS}')
        candidates = size.cells * (self.candidates_per_cell or 0)
        if candidates > MAX_CANDIDATES:
            raise ConfigError(f'{where}: {size.cells} cells of {self.candidates_per_cell:,} candidate operations each '
                              f'make a supernet of {candidates:,}, over the {MAX_CANDIDATES:,} that build in about 15 s; '
                              'lower cells, nodes or operations')

    def search_space(self, size: Size | None = None) -> ModelSpace:
        """The space to search, at the search size unless ``size`` says otherwise."""
        return self.build(size or self.search, False)

    def evaluation_model(self, architecture: dict[str, Any], size: Size | None = None,
                         regularization: Regularization = Regularization()) -> nn.Module:
        """A trainable model of ``architecture``, at the evaluation size unless ``size`` says
        otherwise, with the drop-path and auxiliary head of ``regularization``."""
        return self.build(size or self.evaluation, True, regularization).freeze(architecture)
