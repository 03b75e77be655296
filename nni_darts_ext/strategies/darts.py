"""NNI's DARTS with validation, DARTS's derivation, and a pluggable architecture-gradient estimator.

NNI's ``DARTS`` strategy returns no validation loader and its Lightning module has no
``validation_step``, so a search has no per-epoch validation accuracy. This subclass
validates the supernet on the architecture half of the data after every epoch (logged as
``val_acc``), and its cells derive by the DARTS rule
(:class:`~nni_darts_ext.supermodules.darts_cell.DartsCell`; NNI's own export ranks edges by raw
``alpha``). The architecture step follows an estimator (:mod:`nni_darts_ext.hypergradient`),
first order unless another is given: the gradient NNI's first-order step takes, computed for the
architecture parameters alone (NNI's backward pass also computes every weight's gradient, only to
discard it; NNI's own step runs with NNI's ``penalty``); an
architecture term (a differentiable cost of the architecture, such as
LA-DARTS's predicted latency) adds its gradient to the estimate. Every variant in this package
builds on it.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Protocol

import torch
from torch import Tensor
from nni.mutable import Categorical, CategoricalMultiple
from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell
from nni.nas.oneshot.pytorch.strategy import DARTS  # the real class, even where a caller imported them first

from ..errors import ConfigError, check_number
from ..hypergradient import BilevelProblem, FirstOrder, InnerStep, same_draws
from ..supermodules.darts_cell import DartsCell

ArchitectureGradient = Callable[[BilevelProblem], list[Tensor]]


class ArchitectureTerm(Protocol):
    """A differentiable cost of the architecture alone, added to the validation loss of every
    architecture step (e.g. LA-DARTS's ``lambda * predicted latency``)."""

    def __call__(self, module: ValidatedDartsModule) -> Tensor:
        """The cost as a scalar tensor built from ``module`` 's architecture parameters."""

    def diagnostics(self, module: ValidatedDartsModule) -> dict[str, float]:
        """What the per-epoch record should carry about the term (e.g. ``expected_latency_ms``)."""


class ValidatedDartsModule(DartsLightningModule):
    """NNI's DARTS search loop plus the evaluator's own validation step.

    Parameters
    ----------
    architecture_gradient
        ``None``: NNI's first-order architecture step. Otherwise the estimator that gives the
        architecture parameters their gradient before the architecture optimizer's step.
    architecture_term
        A cost of the architecture whose gradient is added to the estimator's.
    """

    def __init__(self, training_module, *, architecture_gradient: ArchitectureGradient | None = None,
                 architecture_term: ArchitectureTerm | None = None, **kwargs: Any):
        super().__init__(training_module, **kwargs)
        self.architecture_gradient = architecture_gradient
        self.architecture_term = architecture_term

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        return self.training_module.validation_step(batch, batch_idx)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.architecture_gradient is None:
            return super().training_step(batch, batch_idx)
        if self.trainer.current_epoch >= self.warmup_epochs:
            self.resample()
            self.estimated_architecture_step(batch, batch_idx)
        # the weight step, as NNI's DARTS takes it
        self.resample()
        loss_and_metrics = self.training_module.training_step(batch['train'], 2 * batch_idx + 1)
        loss = loss_and_metrics['loss'] if isinstance(loss_and_metrics, dict) else loss_and_metrics
        self.advance_optimization(loss, batch_idx, self.gradient_clip_val)
        self.advance_lr_schedulers(batch_idx)
        if batch_idx % self.log_prob_every_n_step == 0:
            self.log_probs(self.export_probs())
        return loss_and_metrics

    def estimated_architecture_step(self, batch: Any, batch_idx: int) -> None:
        """Set the architecture gradients from the estimator, averaged over processes, and step."""
        weight_optimizer = next(o for o in self.trainer.optimizers if not getattr(o, 'is_arch_optimizer', False))
        problem = self.bilevel_problem(batch, batch_idx, weight_optimizer)
        alphas = problem.alphas
        architecture_optimizer = self.architecture_optimizers()
        architecture_optimizer.zero_grad()
        gradients = self.architecture_gradient(problem)
        if self.architecture_term is not None:
            term = torch.autograd.grad(self.architecture_term(self), alphas, allow_unused=True)
            gradients = [g if t is None else g + t for g, t in zip(gradients, term)]
        for alpha, gradient in zip(alphas, gradients):
            alpha.grad = gradient
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # the estimator's backward passes bypass Lightning's gradient sync: average here
            for alpha in alphas:
                torch.distributed.all_reduce(alpha.grad)
                alpha.grad /= torch.distributed.get_world_size()
        architecture_optimizer.step()

    def bilevel_problem(self, batch: Any, batch_idx: int, weight_optimizer: torch.optim.Optimizer) -> BilevelProblem:
        """The architecture step's problem on ``batch`` (``train`` and ``val`` halves): the weights
        ``weight_optimizer`` trains, this module's architecture parameters, and losses that draw the
        same dropout masks in every pass of the estimate."""
        weights = [p for group in weight_optimizer.param_groups for p in group['params'] if p.requires_grad]
        return BilevelProblem(
            weights, self.arch_parameters(),
            train_loss=same_draws(lambda: self.loss(batch['train'], 2 * batch_idx + 1)),
            val_loss=same_draws(lambda: self.loss(batch['val'], 2 * batch_idx)),
            inner_step=InnerStep.of(weight_optimizer, weights),
        )

    def loss(self, batch: Any, batch_idx: int) -> Tensor:
        """The evaluator's training loss on ``batch`` at the current parameters."""
        result = self.training_module.training_step(batch, batch_idx)
        return result['loss'] if isinstance(result, dict) else result

    def epoch_fields(self) -> dict[str, Any]:
        """What a variant adds to each search epoch's record: the architecture term's diagnostics, if any."""
        return {} if self.architecture_term is None else self.architecture_term.diagnostics(self)

    def arch_parameters(self) -> list[torch.nn.Parameter]:
        """The architecture parameters in module order. NNI's come from a set, whose order differs
        between processes: DDP ranks would add up different tensors, and a resumed search would
        give the architecture optimizer's state to the wrong ones."""
        return self._of_this_supernet('arch_parameters', self._arch_parameters_in_module_order)

    def _arch_parameters_in_module_order(self) -> list[torch.nn.Parameter]:
        alphas = set(super().arch_parameters())
        return [p for _, p in self.named_parameters() if p in alphas]

    def supernet_modules(self) -> list[Any]:
        """NNI's supernet modules, found once per supernet (NNI walks every module of the network at
        each of a step's two ``resample`` calls)."""
        return self._of_this_supernet('supernet_modules', self._every_supernet_module)

    def _every_supernet_module(self) -> list[Any]:
        return list(super().supernet_modules())

    def _of_this_supernet(self, name: str, find: Callable[[], list[Any]]) -> list[Any]:
        """``find()``, found again only when the training module holds another supernet."""
        model = self.training_module.model
        found = self.__dict__.setdefault('_found_in_supernet', {})  # before nn.Module's own attributes exist
        if name not in found or found[name][0]() is not model:
            found[name] = (weakref.ref(model), find())
        return found[name][1]


class ValidatedDARTS(DARTS):
    """First-order DARTS (Liu et al., ICLR 2019) as NNI implements it, validated every epoch.

    Parameters
    ----------
    architecture_gradient
        An estimator from :mod:`nni_darts_ext.hypergradient` for the architecture step (``None``:
        :class:`~nni_darts_ext.hypergradient.FirstOrder`, the gradient NNI's own step takes, of the
        architecture parameters alone; NNI's own step, with NNI's ``penalty`` only).
    architecture_term
        A differentiable cost of the architecture added to the architecture loss; its gradient is
        added to the estimator's (to :class:`~nni_darts_ext.hypergradient.FirstOrder` if none is given).
    **kwargs
        Every parameter of :class:`nni.nas.strategy.DARTS` (``arc_learning_rate``,
        ``gradient_clip_val``, ``warmup_epochs``, ...).
    """

    def __init__(self, *, architecture_gradient: ArchitectureGradient | None = None,
                 architecture_term: ArchitectureTerm | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        check_number('arc_learning_rate', self.arc_learning_rate, strict=True)
        check_number('gradient_clip_val', self.gradient_clip_val, optional=True)
        check_number('warmup_epochs', self.warmup_epochs, integer=True)
        if architecture_gradient is not None and self.penalty is not None:
            raise ConfigError("NNI's penalty acts in NNI's own architecture step; it cannot be combined with "
                              'an architecture_gradient estimator')
        if architecture_gradient is None and (architecture_term is not None or self.penalty is None):
            # NNI's own step's backward pass also computes every weight's gradient, only to discard it,
            # and has no place for a differentiable term; it runs with NNI's penalty only
            architecture_gradient = FirstOrder()
        self.architecture_gradient = architecture_gradient
        self.architecture_term = architecture_term

    def mutate_model(self, model):
        """NNI's supernet of ``model``, after checking that every choice of it is among candidates
        (NNI's own check raises a ``TypeError`` with the mutable's class only)."""
        for label, mutable in model.simplify().items():
            if not isinstance(mutable, (Categorical, CategoricalMultiple)):
                raise ConfigError(f'differentiable search needs choices among candidates (LayerChoice, InputChoice, '
                                  f'Cell, nni.choice); {label!r} is a {type(mutable).__name__}: search this space '
                                  'with random')
        return super().mutate_model(model)

    def default_mutation_hooks(self):
        # NNI's hooks, its differentiable cell swapped for one that derives by DARTS's rule
        return [DartsCell.mutate if hook == DifferentiableMixedCell.mutate else hook
                for hook in super().default_mutation_hooks()]

    def architecture_epochs(self, search_epochs: int) -> int:
        """How many of a search's ``search_epochs`` take architecture steps: those after the warm-up."""
        return max(search_epochs - self.warmup_epochs, 0)

    def search_summary(self, found: dict[str, Any]) -> dict[str, Any]:
        """What a variant adds to the trial's final result about its search and the architecture
        it ``found`` (nothing, here; a composed variant merges its techniques')."""
        return {}

    def cell_options(self) -> dict[str, Any]:
        """Keyword options a technique sets on the supernet cells another technique builds, when
        the two are composed (PC-DARTS's ``k`` on P-DARTS's cells); none here."""
        return {}

    def configure_oneshot_module(self, training_module):
        return ValidatedDartsModule(
            training_module=training_module,
            architecture_gradient=self.architecture_gradient,
            architecture_term=self.architecture_term,
            arc_learning_rate=self.arc_learning_rate,
            gradient_clip_val=self.gradient_clip_val,
            log_prob_every_n_step=self.log_prob_every_n_step,
            warmup_epochs=self.warmup_epochs,
            penalty=self.penalty,
        )

    def val_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        return val_dataloader_fn()


class NNIDARTS(ValidatedDARTS):
    """NNI's own ``DARTS`` strategy, its search unchanged: NNI's first-order step (a backward pass
    to every parameter), NNI's cells and their export (edges ranked by raw ``alpha``). Only the
    per-epoch validation every trial reports is added, and it changes no parameter. The yardstick
    the benchmarks compare every variant with, in the same run.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.architecture_gradient = None  # NNI's own step (the base class would take FirstOrder's)

    def default_mutation_hooks(self):
        return DARTS.default_mutation_hooks(self)
