"""One differentiable search assembled from the parts its techniques put into four slots
(:mod:`~nni_darts_ext.strategies.slots`): NNI's ``DARTS`` strategy built from them, with the
evaluator's validation every epoch (NNI's strategy has none). The strategy classes of the
techniques (``PCDARTS``, ...) are :class:`DifferentiableSearch` with their technique, and
``combine`` joins several. The nnictl trial asks a strategy what it needs through
:class:`TrialStrategy` alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Iterator, Protocol

from nni.mutable import Categorical, CategoricalMultiple
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell
from nni.nas.oneshot.pytorch.strategy import DARTS  # the real class, even where a caller imported them first

from ..errors import ConfigError, check_number
from ..supermodules.darts_cell import DartsCell
from ..supermodules.designed_cell import SurvivingOperations
from .protocols import ArchitectureTerm, Estimator
from .slots import Slots, Technique, fill_slots

class TrialStrategy(Protocol):
    """What the nnictl trial asks a strategy of this package (the trial knows no technique)."""

    searches: bool
    """Whether it searches (a one-shot search) or draws an architecture (``sample``)."""

    arc_learning_rate: float
    """The architecture learning rate, which the trial's ``arc_travel`` sets."""

    deploys: bool
    """Whether it needs :meth:`deploy` (building the deployed network costs a trial that does not)."""

    def architecture_epochs(self, search_epochs: int) -> int:
        """How many of ``search_epochs`` take architecture steps."""

    def check_trial(self, search_epochs: int, early_stop: str) -> None:
        """Refuse a search budget or early stop it cannot run."""

    def deploy(self, space: Any, input_shape: tuple[int, ...]) -> None:
        """The network the found architecture will be and one input's shape."""

    def keep_measurements(self, directory: Path, reuse: bool) -> None:
        """Keep what the search measures before it starts in ``directory``; with ``reuse``, read it there."""

    def search_summary(self, found: dict[str, Any]) -> dict[str, Any]:
        """What the trial's final result carries about the search."""

    def sample(self, space: Any) -> dict[str, Any]:
        """The architecture a strategy that does not search draws from ``space``."""


class DifferentiableSearch(DARTS):
    """A DARTS-family search assembled from its techniques' parts (module docstring), validated every
    epoch; with no technique, first-order DARTS (Liu et al., ICLR 2019) as NNI implements it, its
    cells derived by the DARTS rule and its architecture step computed for alpha alone.

    Parameters
    ----------
    estimator
        An architecture-gradient estimator from :mod:`nni_darts_ext.hypergradient` for a search
        whose techniques set none (default: :class:`~nni_darts_ext.hypergradient.FirstOrder`, the
        gradient NNI's own step takes, of the architecture parameters alone; NNI's own step with
        NNI's ``penalty``).
    terms
        Differentiable costs of the architecture (:class:`ArchitectureTerm`) added to the
        architecture loss beside the techniques'.
    **options
        The options of the class's techniques (``k``, ``eta``, ...) and of
        :class:`nni.nas.strategy.DARTS` (``arc_learning_rate``, ``gradient_clip_val``,
        ``warmup_epochs``, ...), and ``arc_weight_decay``: the architecture optimizer's L2 weight
        decay (DARTS's and NNI's 1e-3 by default; Adam adds it to the gradient before its
        normalization, so it pulls the architecture weights towards uniform as strongly as the
        validation gradient is weak).
    """

    techniques: ClassVar[tuple[type[Technique], ...]] = ()
    """The techniques of this strategy class, in slot order (:func:`~nni_darts_ext.composition.combine`)."""

    searches = True

    def __init__(self, *, estimator: Estimator | None = None, terms: tuple[ArchitectureTerm, ...] = (),
                 arc_weight_decay: float = 1e-3, **options: Any):
        check_number('arc_weight_decay', arc_weight_decay)
        self.arc_weight_decay = arc_weight_decay
        self.parts = [technique(**{name: options.pop(name) for name in technique.options() if name in options})
                      for technique in self.techniques]
        for part in self.parts:
            for option, reason in part.sets_itself.items():
                if option in options:
                    raise ConfigError(reason)
        super().__init__(**options)
        check_number('arc_learning_rate', self.arc_learning_rate, strict=True)
        check_number('gradient_clip_val', self.gradient_clip_val, optional=True)
        check_number('warmup_epochs', self.warmup_epochs, integer=True)
        self.slots = self._filled_slots(estimator, terms)
        self._surviving: SurvivingOperations = {}
        self.slots.schedule.attach(self.build_supernet, self.module_options)

    def _filled_slots(self, estimator: Estimator | None, terms: tuple[ArchitectureTerm, ...]) -> Slots:
        slots = fill_slots([(part.name, part) for part in self.parts])
        if estimator is not None:
            slots.filler('the estimator option').set_estimator(estimator)
        for term in terms:
            slots.filler('the terms option').add_term(term)
        if self.penalty is not None:
            if 'estimator' in slots.filled or slots.terms:
                raise ConfigError("NNI's penalty acts in NNI's own architecture step; it cannot be combined with "
                                  'an estimator or architecture terms')
            # NNI's own step's backward pass also computes every weight's gradient, only to discard it,
            # and has no place for a differentiable term; it runs with NNI's penalty only
            slots.estimator = None
        return slots

    def mutate_model(self, model):
        """The supernet of ``model`` (the schedule's first), after checking that every choice of it is
        among candidates (NNI's own check raises a ``TypeError`` with the mutable's class only)."""
        for label, mutable in model.simplify().items():
            if not isinstance(mutable, (Categorical, CategoricalMultiple)):
                raise ConfigError(f'differentiable search needs choices among candidates (LayerChoice, InputChoice, '
                                  f'Cell, nni.choice); {label!r} is a {type(mutable).__name__}: search this space '
                                  'with random')
        for part in self.parts:
            part.before_supernet(model)
        supernet = self.slots.schedule.supernet(model)
        for part in self.parts:
            part.check_supernet(supernet)
        return supernet

    def build_supernet(self, space: Any, surviving: SurvivingOperations) -> Any:
        """NNI's supernet of ``space`` with the cells slot's modules, each pruned one over the
        ``surviving`` candidates (NNI mutates ``space`` in place)."""
        self._surviving = surviving  # NNI asks default_mutation_hooks() for the hooks, with no argument
        try:
            return super().mutate_model(space)
        finally:
            self._surviving = {}

    def default_mutation_hooks(self):
        # the cells slot's hooks first (the first that takes a module wins), then NNI's, its
        # differentiable cell swapped for one that derives by DARTS's rule
        return [*self.slots.cells.hooks(self._surviving),
                *(DartsCell.mutate if hook == DifferentiableMixedCell.mutate else hook
                  for hook in super().default_mutation_hooks())]

    def configure_softmax(self):
        # NNI's hook for how a mixed operation weighs its candidates: the cells slot's weighing
        return self.slots.cells.candidate_weighing()

    def mutate_evaluator(self, evaluator):
        self.slots.schedule.prepare(evaluator)
        for part in self.parts:
            part.prepare_evaluator(evaluator)
        return self.slots.schedule.evaluator(super().mutate_evaluator(evaluator))

    def configure_oneshot_module(self, training_module):
        return self.slots.schedule.search_module(training_module)

    def module_options(self) -> dict[str, Any]:
        """The keyword arguments of this search's :class:`SearchModule`."""
        return {'estimator': self.slots.estimator, 'terms': tuple(self.slots.terms),
                'arc_learning_rate': self.arc_learning_rate, 'arc_weight_decay': self.arc_weight_decay,
                'gradient_clip_val': self.gradient_clip_val,
                'log_prob_every_n_step': self.log_prob_every_n_step, 'warmup_epochs': self.warmup_epochs,
                'penalty': self.penalty}

    def val_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        return val_dataloader_fn()

    def list_models(self, sort: bool = True, limit: int | None = 1) -> Iterator[Any]:
        # the search may end on another supernet than the first (P-DARTS's stages): export the last
        yield self.model_space.freeze(self.oneshot_module.export())

    # what the trial asks (TrialStrategy)

    @property
    def deploys(self) -> bool:
        """Whether a technique times the deployed network (:meth:`deploy`)."""
        return any(part.deploys for part in self.parts)

    def architecture_epochs(self, search_epochs: int) -> int:
        """How many of a search's ``search_epochs`` take architecture steps (after warm-ups)."""
        return self.slots.schedule.architecture_epochs(search_epochs, self.warmup_epochs)

    def check_trial(self, search_epochs: int, early_stop: str) -> None:
        """Refuse a search of ``search_epochs`` or an ``early_stop`` the schedule cannot run."""
        self.slots.schedule.check_trial(search_epochs, self.warmup_epochs, early_stop)

    def deploy(self, space: Any, input_shape: tuple[int, ...]) -> None:
        """Tell the techniques the network the found architecture will be (``space`` at its deployed
        size) and one input's shape (LA-DARTS times those networks)."""
        for part in self.parts:
            part.deploy(space, tuple(input_shape))

    def keep_measurements(self, directory: Path, reuse: bool) -> None:
        """Have the techniques keep what they measure before the search in ``directory`` (the
        search's checkpoints) and, with ``reuse``, read it from there
        (:meth:`~nni_darts_ext.strategies.slots.Technique.keep_measurements`)."""
        for part in self.parts:
            part.keep_measurements(directory, reuse)

    def search_summary(self, found: dict[str, Any]) -> dict[str, Any]:
        """What the schedule and the techniques add to the trial's final result."""
        summary = dict(self.slots.schedule.summary())
        for part in self.parts:
            summary.update(part.summary(found))
        return summary
