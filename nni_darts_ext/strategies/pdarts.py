"""P-DARTS (Chen et al., ICCV 2019): progressive depth, search-space approximation, skip-connect control.

DARTS searches a shallow network and deploys a deep one; P-DARTS closes that depth gap in
stages. Each stage builds the space deeper (5, 11, 17 cells in the paper) with fresh weights
and fresh architecture parameters over the operations that survived the stage before, after
which every edge keeps only its best operations (8, then 5, then 3), so the deeper network
costs about what the shallow one did. The zero operation competes like any other through the
last stage; only the derivation of the final cell passes it over. A ``LayerChoice`` outside a
cell is a mixed operation too and is pruned the same way (its strongest candidates by
``softmax(alpha)``). Two guards against collapse into skip-connects: a dropout after every
identity skip-connect while searching (its rate decaying linearly through the warm-up, then
exponentially from the stage's rate, see :func:`skip_dropout_rate`), and a limit of
``skip_limit`` skip-connects in the derived normal cell.

By default the stages split the evaluator's ``max_epochs`` in the paper's proportions
(:func:`budget_stages`), so a search costs the epochs its evaluator asks for.

The technique fills two slots of the search: the schedule (:class:`StageSchedule`) and the cells
(pruned, their skip-connects limited). The stages run inside the evaluator (:class:`StageRunner`),
so the strategy works the same in ``NasExperiment`` and in the trial: ``mutate_model`` gives the
first stage's supernet, ``evaluate`` runs every stage, and the evaluator's module ends as the last
stage's, whose ``export()`` is the result.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import nni
import pytorch_lightning as pl
import torch
from nni.nas.evaluator.pytorch import Lightning
from nni.nas.nn.pytorch import ModelSpace

from ..checkpoints import read_checkpoint
from ..errors import ConfigError, check_number, unknown_value
from ..nni_internals import retraced, traced_argument
from ..registry import preset
from ..supermodules.designed_cell import DesignedCell, DesignedLayer, SkipConnectDropout, SurvivingOperations
from .search import DifferentiableSearch
from .protocols import ModuleOptions, SupernetBuilder
from .search_module import SearchModule
from .slots import SlotFiller, Technique

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One stage of the search.

    Attributes
    ----------
    cells
        Depth of the network searched in this stage.
    operations
        Operations per edge, the zero operation counted while it survives; ``None``: every
        operation of the space (the first stage searches them all).
    epochs
        Training epochs of the stage, warm-up included.
    warmup_epochs
        The first epochs train the weights only.
    skip_dropout
        The stage's dropout rate after identity skip-connects, from which :func:`skip_dropout_rate`
        decays in each epoch.
    """
    cells: int
    operations: int | None
    epochs: int
    warmup_epochs: int
    skip_dropout: float


PAPER_STAGES = (
    # 8 operations on DARTS's space: its 7 and the zero operation
    Stage(cells=5, operations=None, epochs=25, warmup_epochs=10, skip_dropout=0.0),
    Stage(cells=11, operations=5, epochs=25, warmup_epochs=10, skip_dropout=0.4),
    Stage(cells=17, operations=3, epochs=25, warmup_epochs=10, skip_dropout=0.7),
)
"""The paper's CIFAR-10 search: 5, 11, 17 cells; 8, 5, 3 operations; 25 epochs, 10 of warm-up."""

CPU_STAGES = (
    Stage(cells=3, operations=None, epochs=2, warmup_epochs=1, skip_dropout=0.0),
    Stage(cells=4, operations=5, epochs=2, warmup_epochs=1, skip_dropout=0.4),
    Stage(cells=5, operations=3, epochs=2, warmup_epochs=1, skip_dropout=0.7),
)
"""Two CPU cores' size for ``darts_small``: from its 3-cell search depth to its 5-cell evaluation
depth (as the paper grows towards its 20-cell evaluation network), 2 epochs a stage, 1 of warm-up."""

STAGE_PRESETS = {'paper': PAPER_STAGES, 'cpu': CPU_STAGES}

BUDGET = 'budget'
"""The ``stages`` setting that splits the evaluator's ``max_epochs`` (:func:`budget_stages`)."""

DEPTH_ARGUMENTS = ('num_cells', 'cells')
"""Constructor arguments that set a model space's depth: NNI's hub DARTS and our cell networks."""

CHECKPOINT_KEY = 'pdarts'
"""Where a checkpoint keeps the stage it was saved in."""

SKIP_DROPOUT_DECAY = 0.2
"""The paper's decay after the warm-up: rate = initial rate x exp(-0.2 x epochs since the warm-up)."""


def budget_stages(max_epochs: Any) -> tuple[Stage, ...]:
    """The paper's stages fitted to ``max_epochs`` epochs in all.

    Three stages share the epochs as equally as they can (the paper: 25 each), the later stages
    taking the remainder (10 epochs: 3, 3, 4): the last stage's weights are the ones the found
    architecture is derived from. Each stage's warm-up keeps the paper's 10 of 25, rounded, and
    leaves the architecture at least one epoch. With 2 epochs, the paper's first and last stages
    (from all operations at 5 cells to 3 at 17), one epoch each; with 1, its first stage alone (a
    one-stage search prunes nothing). Cells, operations and skip-connect dropout are the paper's
    stages' (a space without a depth argument runs every stage at its own depth).

    Raises
    ------
    ConfigError
        When ``max_epochs`` is not a positive integer.
    """
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise ConfigError(f"P-DARTS's stages: {BUDGET} splits the evaluator's max_epochs, which is {max_epochs!r}; "
                          f'set max_epochs to a positive integer or give stages ({", ".join(STAGE_PRESETS)} or a list)')
    template = PAPER_STAGES if max_epochs >= len(PAPER_STAGES) else (PAPER_STAGES[0], PAPER_STAGES[-1])[:max_epochs]
    share, remainder = divmod(max_epochs, len(template))
    stages = []
    for index, stage in enumerate(template):
        epochs = share + (index >= len(template) - remainder)
        warmup = min(round(epochs * stage.warmup_epochs / stage.epochs), epochs - 1)
        stages.append(replace(stage, epochs=epochs, warmup_epochs=warmup))
    return tuple(stages)


def parse_stages(stages: str | Sequence[Stage | Mapping[str, Any] | Sequence[Any]]) -> tuple[Stage, ...]:
    """Stages from a preset name (``paper``, ``cpu``), or a list of :class:`Stage` s, of mappings with
    its fields, or of ``[cells, operations, epochs, warmup_epochs, skip_dropout]`` lists; checked.
    (``budget``, which needs the evaluator, is :func:`budget_stages`.)"""
    if isinstance(stages, str):
        if stages not in STAGE_PRESETS:
            raise unknown_value('P-DARTS stage preset', stages, (BUDGET, *STAGE_PRESETS))
        return STAGE_PRESETS[stages]
    if not isinstance(stages, Sequence):
        raise ConfigError(f'stages must be {BUDGET}, a preset ({", ".join(STAGE_PRESETS)}) or a list of stages, '
                          f'got {stages!r}')
    names = [f.name for f in fields(Stage)]
    parsed = []
    for index, stage in enumerate(stages, start=1):
        if isinstance(stage, Mapping):
            unknown = sorted(set(stage) - set(names))
            missing = sorted(set(names) - set(stage))
            if unknown or missing:
                raise ConfigError(f'P-DARTS stage {index}: {"unknown" if unknown else "missing"} field '
                                  f'{(unknown or missing)[0]!r}; a stage has {", ".join(names)}')
            stage = Stage(**stage)
        elif not isinstance(stage, Stage):
            if isinstance(stage, str) or not isinstance(stage, Sequence) or len(stage) != len(names):
                raise ConfigError(f'P-DARTS stage {index} is {stage!r}; give [{", ".join(names)}] or a mapping')
            stage = Stage(*stage)
        parsed.append(_checked(stage, index, parsed[-1] if parsed else None))
    if not parsed:
        raise ConfigError('P-DARTS needs at least one stage')
    return tuple(parsed)


def _checked(stage: Stage, index: int, previous: Stage | None) -> Stage:
    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    problems = []
    if not whole(stage.cells) or stage.cells < 1:
        problems.append(f'cells must be a positive integer, got {stage.cells!r}')
    if not whole(stage.epochs) or stage.epochs < 1:
        problems.append(f'epochs must be a positive integer, got {stage.epochs!r}')
    elif not whole(stage.warmup_epochs) or not 0 <= stage.warmup_epochs < stage.epochs:
        problems.append(f'warmup_epochs must be an integer from 0 to epochs - 1 ({stage.epochs - 1}), '
                        f'got {stage.warmup_epochs!r}')
    if not isinstance(stage.skip_dropout, (int, float)) or not 0 <= stage.skip_dropout < 1:
        problems.append(f'skip_dropout must be in [0, 1), got {stage.skip_dropout!r}')
    if previous is None:
        if stage.operations is not None and (not whole(stage.operations) or stage.operations < 1):
            problems.append(f'operations must be a positive integer or null (all), got {stage.operations!r}')
    elif not whole(stage.operations) or stage.operations < 1:
        problems.append(f'operations must be a positive integer after the first stage, got {stage.operations!r}')
    elif previous.operations is not None and stage.operations > previous.operations:
        problems.append(f'operations ({stage.operations}) cannot grow back from the stage before '
                        f'({previous.operations}): dropped operations are gone')
    if problems:
        raise ConfigError(f'P-DARTS stage {index}: ' + '; '.join(problems))
    return stage


def skip_dropout_rate(initial: float, epoch: int, epochs: int, warmup_epochs: int,
                      decay: float = SKIP_DROPOUT_DECAY) -> float:
    """The dropout rate after identity skip-connects in ``epoch`` (from 0) of a stage of ``epochs``.

    As P-DARTS's reference code: ``initial x (epochs - epoch - 1) / epochs`` during the
    ``warmup_epochs``, then ``initial x exp(-decay x (epoch - warmup_epochs))``, which starts
    again at ``initial`` when the architecture starts to learn.
    """
    if epoch < warmup_epochs:
        return initial * (epochs - epoch - 1) / epochs
    return initial * math.exp(-decay * (epoch - warmup_epochs))


def surviving_operations(weights: Mapping[Any, float], keep: int) -> tuple[Any, ...]:
    """The ``keep`` operations of a mixed operation with the highest ``weights`` (in the order given),
    the zero operation competing like any other; all of them when it has no more than ``keep``."""
    kept = set(sorted(weights, key=lambda op: weights[op], reverse=True)[:keep])
    return tuple(op for op in weights if op in kept)


def next_surviving(supernet: ModelSpace, keep: int) -> dict[str, tuple[Any, ...]]:
    """Per edge of every cell and per free ``LayerChoice`` in ``supernet``, the
    candidates the next stage keeps."""
    surviving: dict[str, tuple[Any, ...]] = {}
    for module in supernet.modules():
        if isinstance(module, DesignedCell):
            for edge in module.edge_operations:
                surviving[edge] = surviving_operations(module.operation_weights(edge), keep)
        elif isinstance(module, DesignedLayer):
            surviving[module.label] = surviving_operations(module.operation_weights(), keep)
    return surviving


class SpaceAtDepth:
    """Builds a model space again, fresh, at any depth: from the constructor arguments NNI traced
    (``num_cells`` or ``cells``); a space without them is copied at its own depth (logged)."""

    def __init__(self, space: ModelSpace):
        kwargs = getattr(space, 'trace_kwargs', None)
        self.depth_argument = next((name for name in DEPTH_ARGUMENTS if name in (kwargs or {})), None)
        if self.depth_argument is None:
            _logger.info('%s has no traced depth argument (%s): every P-DARTS stage runs at its own depth',
                         type(space).__name__, ' or '.join(DEPTH_ARGUMENTS))
            self.template = copy.deepcopy(space)
        else:
            self.symbol, self.args, self.kwargs = space.trace_symbol, space.trace_args, dict(kwargs)

    def build(self, cells: int) -> ModelSpace:
        if self.depth_argument is None:
            return copy.deepcopy(self.template)
        return self.symbol(*self.args, **{**self.kwargs, self.depth_argument: cells})


class StageModule(SearchModule):
    """DARTS's search step for one P-DARTS stage: sets the skip-connect dropout every epoch, adds
    the stage to each epoch's record, and to each checkpoint what resuming needs (the stage, its
    surviving operations, the seconds of the stages before)."""

    def __init__(self, training_module, *, stage_index: int, stage: Stage, skip_dropout_decay: float,
                 surviving: SurvivingOperations, finished_seconds: list[float], **kwargs: Any):
        super().__init__(training_module, **{**kwargs, 'warmup_epochs': stage.warmup_epochs})
        self.stage_index = stage_index
        self.stage = stage
        self.skip_dropout_decay = skip_dropout_decay
        self.surviving = surviving
        self.finished_seconds = finished_seconds

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {'stage': self.stage_index, 'surviving': dict(self.surviving),
                                      'stage_seconds': list(self.finished_seconds)}

    def skip_dropout(self) -> float:
        return skip_dropout_rate(self.stage.skip_dropout, self.trainer.current_epoch, self.stage.epochs,
                                 self.stage.warmup_epochs, self.skip_dropout_decay)

    def on_train_epoch_start(self):
        rate = self.skip_dropout()
        for module in self.model.modules():
            if isinstance(module, SkipConnectDropout):
                module.p = rate
        return super().on_train_epoch_start()

    def epoch_fields(self) -> dict[str, Any]:
        return {**super().epoch_fields(), 'stage': self.stage_index + 1, 'cells': self.stage.cells,
                'skip_dropout': self.skip_dropout()}


@nni.trace  # NNI checks its evaluators through their traced arguments
class StageRunner(Lightning):
    """The evaluator of a P-DARTS search: ``evaluate`` runs every stage, each with a fresh trainer
    for the stage's epochs (the same callbacks and flags) and a fresh search module; between stages
    it prunes the edges and builds the space deeper. The schedule's ``stage_seconds`` records each
    stage's time."""

    def __init__(self, lightning_module, trainer, *, schedule: StageSchedule, **kwargs: Any):
        super().__init__(lightning_module, trainer, **kwargs)
        self.schedule = schedule

    def evaluate(self, model):
        """Every stage; from the stage a checkpoint in ``fit_kwargs['ckpt_path']`` was saved in, if given."""
        schedule, training_module = self.schedule, self.module.training_module
        base_trainer, fit_kwargs = self.trainer, self.fit_kwargs
        stage_seconds = schedule.stage_seconds
        stage_seconds.clear()
        # each stage draws from its own seed: a search resumed in a later stage draws what an
        # uninterrupted one does (within a stage, the checkpoint keeps the random states)
        base_seed = torch.initial_seed()
        first = 0
        if fit_kwargs.get('ckpt_path'):
            saved = _saved_stage(Path(fit_kwargs['ckpt_path']))
            first, stage_seconds[:] = saved['stage'], saved['stage_seconds']
            if first:
                model = schedule.stage_supernet(first, saved['surviving'])
                self.module = schedule.stage_module(training_module, first)
        for index in range(first, len(schedule.stages)):
            stage = schedule.stages[index]
            started = time.perf_counter()
            resuming = index == first and fit_kwargs.get('ckpt_path')
            if not resuming:
                pl.seed_everything((base_seed + index) % 2 ** 32, verbose=False)  # unseeded: 64 bits
            if index > first:
                model = schedule.next_stage_supernet(model, index)
                self.module = schedule.stage_module(training_module, index)
            self.trainer = retraced(base_trainer, max_epochs=stage.epochs)
            self.fit_kwargs = fit_kwargs if resuming else {**fit_kwargs, 'ckpt_path': None}
            _logger.info('P-DARTS stage %d: %d cells, %s operations per edge, %d epochs',
                         index + 1, stage.cells, stage.operations or 'all', stage.epochs)
            super().evaluate(model)
            stage_seconds.append(round(time.perf_counter() - started, 2))
        self.fit_kwargs = fit_kwargs


def _saved_stage(path: Path) -> dict[str, Any]:
    """What a P-DARTS checkpoint at ``path`` keeps of its stage, read by torch's weights-only unpickler
    (:func:`~nni_darts_ext.checkpoints.read_checkpoint`): a checkpoint is data, never code to run.

    Raises
    ------
    ConfigError
        Naming ``path``, for a file that is not a checkpoint of a P-DARTS search.
    """
    try:
        return read_checkpoint(path)[CHECKPOINT_KEY]
    except (ValueError, KeyError) as err:
        reason = f'no {CHECKPOINT_KEY!r} stage in it' if isinstance(err, KeyError) else str(err)
        raise ConfigError(f'resume: {path} ({reason}) is not a checkpoint of a P-DARTS search') from None


class StageSchedule:
    """P-DARTS's schedule: the search in stages, each on a fresh supernet of the stage's depth over
    the operations that survived the stage before (a :class:`~nni_darts_ext.strategies.protocols.Schedule`).

    Parameters
    ----------
    stages
        ``budget``: the evaluator's ``max_epochs`` split into the paper's stages
        (:func:`budget_stages`, resolved when the evaluator is given); a preset name or a list of
        stages (:func:`parse_stages`).
    skip_dropout_decay
        The exponential decay of the skip-connect dropout after each stage's warm-up.

    Attributes
    ----------
    surviving
        The candidates each mixed operation of the stage being built keeps.
    stage_seconds
        Each finished stage's seconds.
    """

    def __init__(self, stages: Any, skip_dropout_decay: float):
        self.from_budget = isinstance(stages, str) and stages == BUDGET
        # given stages are checked now; the budget's are known with the evaluator (None until then)
        self.stages: tuple[Stage, ...] | None = None if self.from_budget else parse_stages(stages)
        self.skip_dropout_decay = skip_dropout_decay
        self.stage_seconds: list[float] = []
        self.surviving: SurvivingOperations = {}
        self._spaces: SpaceAtDepth | None = None

    def attach(self, build_supernet: SupernetBuilder, module_options: ModuleOptions) -> None:
        self.build_supernet, self.module_options = build_supernet, module_options

    def supernet(self, model: ModelSpace) -> ModelSpace:
        """The first stage's supernet, built anew at its depth; ``model`` itself stays unmutated
        (later stages build from it, and NNI freezes the found architecture on it)."""
        self._spaces = SpaceAtDepth(model)
        return self.stage_supernet(0, {})

    def next_stage_supernet(self, supernet: ModelSpace, index: int) -> ModelSpace:
        """Prune ``supernet`` (the stage before ``index``) by its weights; build stage ``index``'s supernet."""
        return self.stage_supernet(index, next_surviving(supernet, self.stages[index].operations))

    def stage_supernet(self, index: int, surviving: SurvivingOperations) -> ModelSpace:
        """Stage ``index``'s supernet over the ``surviving`` operations, fresh."""
        self.surviving = surviving
        return self.build_supernet(self._spaces.build(self.stage_cells(index)), surviving)

    def stage_cells(self, index: int) -> int:
        """Stage ``index``'s depth. NNI builds the supernet before it hands over the evaluator: until
        then the budget's stages are unknown, but their first has the paper's first depth whatever the budget."""
        return (self.stages or budget_stages(1))[index].cells

    def prepare(self, evaluator: Lightning) -> None:
        """``budget`` stages split the evaluator's ``max_epochs`` (logged with the stages)."""
        max_epochs = traced_argument(evaluator.trainer, 'max_epochs')
        if self.from_budget:
            self.stages = budget_stages(max_epochs)
        source = (f"the evaluator's max_epochs={max_epochs} split" if self.from_budget
                  else f"stages as given; the evaluator's max_epochs={max_epochs} is not used")
        depth = ("the space's own depth" if self._spaces is not None and self._spaces.depth_argument is None
                 else '/'.join(str(s.cells) for s in self.stages) + ' cells')
        _logger.info('P-DARTS runs stages of %s epochs (%s of warm-up) at %s (%s)',
                     '+'.join(str(s.epochs) for s in self.stages), '+'.join(str(s.warmup_epochs) for s in self.stages),
                     depth, source)

    def search_module(self, training_module) -> StageModule:
        return self.stage_module(training_module, 0)

    def stage_module(self, training_module, index: int) -> StageModule:
        return StageModule(
            training_module, stage_index=index, stage=self.stages[index], skip_dropout_decay=self.skip_dropout_decay,
            surviving=self.surviving, finished_seconds=self.stage_seconds, **self.module_options())

    def evaluator(self, mutated: Lightning) -> StageRunner:
        return StageRunner(mutated.module, mutated.trainer, schedule=self, train_dataloaders=mutated.train_dataloaders,
                            val_dataloaders=mutated.val_dataloaders, datamodule=mutated.datamodule,
                            fit_kwargs=mutated.fit_kwargs)

    def architecture_epochs(self, search_epochs: int, warmup_epochs: int) -> int:
        """The stages' epochs after their warm-ups (the budget's stages split ``search_epochs``)."""
        stages = budget_stages(search_epochs) if self.from_budget else self.stages
        return sum(stage.epochs - stage.warmup_epochs for stage in stages)

    def check_trial(self, search_epochs: int, warmup_epochs: int, early_stop: str) -> None:
        """Refuse an early stop (the stages run to the end and limit skip-connects themselves)."""
        if early_stop != 'none':
            raise ConfigError('early_stop cannot end a P-DARTS search, which runs its stages to the end and limits '
                              "skip-connects itself (skip_limit): set early_stop to 'none'")
        if not self.from_budget:  # otherwise its stages split search_epochs, the evaluator's max_epochs
            _logger.info('pdarts runs its stages (%s epochs in all); search_epochs (%d) is not used',
                         '+'.join(str(stage.epochs) for stage in self.stages), search_epochs)

    def summary(self) -> dict[str, Any]:
        """Each stage's seconds."""
        return {'stage_s': list(self.stage_seconds)}


class ProgressiveStages(Technique):
    """P-DARTS's technique: the schedule slot's stages and pruning on the cells slot, on any NNI
    model space (NNI's hub DARTS, our YAML spaces, a user's own).

    Every mixed operation over candidate operations is pruned between stages: each edge of a
    ``Cell`` and each ``LayerChoice`` outside one keeps the ``operations`` strongest candidates of
    the next stage, and the next stage's fresh supernet holds only those (a choice with no more
    candidates than that stays whole; a choice nested in a dropped candidate leaves with it).
    ``InputChoice`` s choose among inputs, not operations: nothing to prune, they are searched as in
    DARTS, as are ``Repeat`` depths (the ``LayerChoice`` s in the repeated blocks are pruned). An
    ``nn.Identity`` candidate of a free ``LayerChoice`` gets the skip-connect dropout, as an identity
    skip-connect in a cell does; ``skip_limit`` counts the normal cell's skip-connects only (the
    paper's M), so a free ``LayerChoice`` exports its strongest surviving candidate, identity or not.

    Parameters
    ----------
    stages
        ``budget`` (default): the evaluator's ``max_epochs`` split into the paper's stages
        (:func:`budget_stages`, resolved when the evaluator is given). A preset (``paper``:
        5/11/17 cells, 8/5/3 operations, 25 epochs with 10 of warm-up, skip-connect dropout
        0/0.4/0.7; ``cpu``: :data:`CPU_STAGES`) or a list of stages (see :func:`parse_stages`):
        each stage's ``epochs`` replace the trainer's ``max_epochs``.
    skip_limit
        The most skip-connects the derived normal cell may hold (the paper's M = 2); ``None``: no limit.
    skip_dropout_decay
        The exponential decay of the skip-connect dropout after the warm-up (paper: 0.2 per epoch).
    """
    name = 'pdarts'
    sets_itself = {'warmup_epochs': 'P-DARTS sets warmup_epochs per stage (the stages option), not for the whole search'}

    def __init__(self, *, stages: Any = BUDGET, skip_limit: int | None = 2,
                 skip_dropout_decay: float = SKIP_DROPOUT_DECAY):
        check_number('skip_limit', skip_limit, integer=True, optional=True)
        check_number('skip_dropout_decay', skip_dropout_decay)
        self.skip_limit = skip_limit
        self.schedule = StageSchedule(stages, skip_dropout_decay)

    def fill(self, slots: SlotFiller) -> None:
        slots.set_schedule(self.schedule)
        slots.design_cells(pruned=True, skip_limit=self.skip_limit)

    def check_supernet(self, supernet: ModelSpace) -> None:
        if not any(isinstance(module, (DesignedCell, DesignedLayer)) for module in supernet.modules()):
            raise ConfigError('pdarts found no choice among operations (an NNI Cell or a LayerChoice) to prune between '
                              'stages, so it would search as darts does: search this space with darts')


class PDARTS(DifferentiableSearch):
    """Progressive DARTS: :class:`ProgressiveStages`'s ``stages``, ``skip_limit`` and
    ``skip_dropout_decay`` and :class:`~nni_darts_ext.strategies.search.DifferentiableSearch`'s options
    (``arc_learning_rate``, ``gradient_clip_val``, an ``estimator``; the warm-up is set per stage)."""
    techniques = (ProgressiveStages,)


# the paper's CIFAR-10 search (Adam lr 6e-4, at most 2 skip-connects), its 3 stages sharing the
# evaluator's max_epochs in the paper's proportions (stages: paper, the paper's 3 x 25 epochs)
preset('pdarts', 'P-DARTS (Chen et al., ICCV 2019): deeper stages over pruned operations, skip-connect control',
       PDARTS, arc_learning_rate=6e-4)
