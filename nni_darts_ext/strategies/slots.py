"""The four slots of a differentiable search, and the techniques that fill them.

===========  =====================================================  ====================================
slot         what it holds                                          DARTS (Liu et al., ICLR 2019)
===========  =====================================================  ====================================
schedule     how the search runs                                    one run (:class:`OneRun`)
cells        the supernet's mixed operations                        plain mixed edges
             (:class:`~nni_darts_ext.supermodules.cell_design.CellDesign`)
terms        differentiable costs added to the architecture loss    none
estimator    the architecture gradient                              first order
             (:mod:`nni_darts_ext.hypergradient`)
===========  =====================================================  ====================================

A :class:`Technique` is one paper's change: it puts its parts into the slots (PC-DARTS sets
partial channels on the cells; P-DARTS its stages in the schedule and pruning on the cells;
Stabilized-DARTS the amended estimator; LA-DARTS a latency term). Techniques that cannot share a
search are found by filling the slots (:func:`fill_slots`): two that take one slot holding one
part (the estimator, the schedule), or cells asked for what they cannot do together.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError
from ..hypergradient import FirstOrder
from ..supermodules.cell_design import CellDesign
from .protocols import ArchitectureTerm, Estimator, ModuleOptions, Schedule, SupernetBuilder
from .search_module import SearchModule

SLOTS = ('schedule', 'cells', 'terms', 'estimator')
"""The slots, in the order a composition's defaults are taken: where two techniques' presets set
one option differently, the technique of the earlier slot wins (the supernet's papers set its
architecture learning rate)."""

SINGLE_PART = {'estimator': 'the architecture-gradient estimator', 'schedule': 'the schedule'}
"""Slots that hold one part: a second technique for them is a conflict."""


class OneRun:
    """DARTS's schedule: one run of the evaluator's epochs, the architecture frozen for the first
    ``warmup_epochs``."""

    def attach(self, build_supernet: SupernetBuilder, module_options: ModuleOptions) -> None:
        self.build_supernet, self.module_options = build_supernet, module_options

    def supernet(self, model: Any) -> Any:
        return self.build_supernet(model, {})

    def prepare(self, evaluator: Any) -> None:
        pass

    def search_module(self, training_module: Any) -> SearchModule:
        return SearchModule(training_module, **self.module_options())

    def evaluator(self, mutated: Any) -> Any:
        return mutated

    def architecture_epochs(self, search_epochs: int, warmup_epochs: int) -> int:
        return max(search_epochs - warmup_epochs, 0)

    def check_trial(self, search_epochs: int, warmup_epochs: int, early_stop: str) -> None:
        if warmup_epochs >= search_epochs:
            raise ConfigError(f'warmup_epochs ({warmup_epochs}) must be below search_epochs ({search_epochs}), '
                              'or the architecture is never trained')

    def summary(self) -> dict[str, Any]:
        return {}


@dataclass
class Slots:
    """The parts of one search, and which techniques filled each slot.

    Attributes
    ----------
    estimator
        ``None``: NNI's own first-order step (only with NNI's ``penalty``, which acts in it).
    filled
        Per slot, the names of the techniques that filled it, in the order they did.
    """
    cells: CellDesign = field(default_factory=CellDesign)
    estimator: Estimator | None = field(default_factory=FirstOrder)
    terms: list[ArchitectureTerm] = field(default_factory=list)
    schedule: Schedule = field(default_factory=OneRun)
    filled: dict[str, list[str]] = field(default_factory=dict)

    def filler(self, name: str) -> SlotFiller:
        """The calls by which the technique ``name`` (as errors call it) fills these slots."""
        return SlotFiller(self, name)

    def take(self, slot: str, name: str) -> None:
        """Record that ``name`` fills ``slot``.

        Raises
        ------
        ConfigError
            When ``slot`` holds one part and another technique filled it.
        """
        earlier = self.filled.setdefault(slot, [])
        if slot in SINGLE_PART and earlier:
            raise ConfigError(f'{earlier[0]} and {name} cannot be composed: both set {SINGLE_PART[slot]}, '
                              'and a search has one')
        earlier.append(name)


@dataclass(frozen=True)
class SlotFiller:
    """One technique's typed calls into a search's slots."""
    slots: Slots
    name: str

    def set_schedule(self, schedule: Schedule) -> None:
        self.slots.take('schedule', self.name)
        self.slots.schedule = schedule

    def set_estimator(self, estimator: Estimator) -> None:
        self.slots.take('estimator', self.name)
        self.slots.estimator = estimator

    def add_term(self, term: ArchitectureTerm) -> None:
        self.slots.take('terms', self.name)
        self.slots.terms.append(term)

    def design_cells(self, **properties: Any) -> None:
        """Set properties of the supernet's cells (:class:`~nni_darts_ext.supermodules.cell_design.CellDesign`)."""
        self.slots.take('cells', self.name)
        self.slots.cells.set(self.name, **properties)


def fill_slots(parts: list[tuple[str, Technique]]) -> Slots:
    """The slots filled by the techniques ``parts`` (each with the name errors call it), in that order.

    Raises
    ------
    ConfigError
        For two techniques that take one single-part slot, or ask the cells for what they cannot
        do together, naming them in the order of ``parts``.
    """
    slots = Slots()
    for name, part in parts:
        part.fill(slots.filler(name))
    conflict = slots.cells.conflict()
    if conflict:
        order = [name for name, _ in parts]
        first, second = sorted(conflict[:2], key=order.index)
        raise ConfigError(f'{first} and {second} cannot be composed: {conflict[2]}')
    return slots


class Technique(ABC):
    """One paper's change to DARTS's search: the parts it puts into the slots, and what it adds to
    the steps around the search. Its constructor's keyword arguments are its options, with the
    paper's values as defaults.

    Attributes
    ----------
    name
        The name of its variant (``pcdarts``).
    sets_itself
        Options of the search it sets in its own way, which a search with it refuses
        (P-DARTS's stages carry their own warm-up), each with the reason.
    """
    name: ClassVar[str]
    sets_itself: ClassVar[dict[str, str]] = {}
    deploys: ClassVar[bool] = False
    """Whether :meth:`deploy` matters to it (LA-DARTS times the deployed network)."""

    @abstractmethod
    def fill(self, slots: SlotFiller) -> None:
        """Put this technique's parts into the slots (:class:`SlotFiller`); what it fills must not
        depend on its options, so that a composition's conflicts are found before any option is set."""

    def before_supernet(self, model: Any) -> None:
        """Before the supernet is built from the ``model`` space (which NNI then mutates in place)."""

    def check_supernet(self, supernet: Any) -> None:
        """Refuse a supernet in which the technique found nothing to act on."""

    def prepare_evaluator(self, evaluator: Any) -> None:
        """Before NNI wraps the evaluator for the search."""

    def deploy(self, space: Any, input_shape: tuple[int, ...]) -> None:
        """The network the found architecture will be (``space`` at its deployed size) and one input's shape."""

    def keep_measurements(self, directory: Path, reuse: bool) -> None:
        """Keep what the technique measures before the search in ``directory`` (the search's
        checkpoints), and with ``reuse`` read it from there, so that a resumed search has the very
        inputs the interrupted one had."""

    def summary(self, found: dict[str, Any]) -> dict[str, Any]:
        """What the trial's final result carries about the search and the architecture it ``found``."""
        return {}

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """Its options: the keyword arguments of its constructor."""
        return tuple(name for name, parameter in inspect.signature(cls.__init__).parameters.items()
                     if parameter.kind is inspect.Parameter.KEYWORD_ONLY)
