"""The Lightning module of a differentiable search: NNI's DARTS loop with the search's estimator
and architecture terms, and the evaluator's validation every epoch."""

from __future__ import annotations

import statistics
import weakref
from typing import Any, Callable

import torch
from torch import Tensor
from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule

from ..hypergradient import BilevelProblem, InnerStep, same_draws
from ..second_derivatives import norm
from ..nni_internals import architecture_step_held_back
from ..supermodules.weighing import reading_probabilities, sampled_weighings

from .protocols import ArchitectureTerm, Estimator

class SearchModule(DartsLightningModule):
    """NNI's DARTS search loop with the slots' estimator and terms, plus the evaluator's own validation step.

    Parameters
    ----------
    estimator
        ``None``: NNI's first-order architecture step. Otherwise the estimator that gives the
        architecture parameters their gradient before the architecture optimizer's step.
    terms
        Costs of the architecture whose gradients are added to the estimator's.
    arc_weight_decay
        The architecture optimizer's weight decay (NNI fixes it at DARTS's 1e-3).
    """

    def __init__(self, training_module, *, estimator: Estimator | None = None,
                 terms: tuple[ArchitectureTerm, ...] = (), arc_weight_decay: float = 1e-3, **kwargs: Any):
        super().__init__(training_module, **kwargs)
        self.arc_weight_decay = arc_weight_decay
        self.estimator = estimator
        self.terms = tuple(terms)
        self.term_to_loss: list[Tensor] = []  # this epoch's steps' gradient-norm ratios

    def on_train_epoch_start(self):
        self.term_to_loss.clear()
        for weighing in sampled_weighings(self.training_module.model):
            weighing.at_epoch(self.trainer.current_epoch, self.trainer.max_epochs)
        return super().on_train_epoch_start()

    def export_probs(self):
        """NNI's probabilities of every choice, ``softmax(alpha)`` even where the forward pass samples."""
        with reading_probabilities(self.training_module.model):
            return super().export_probs()

    def configure_architecture_optimizers(self):
        # NNI's Adam (betas 0.5 and 0.999), at this search's weight decay
        optimizer = super().configure_architecture_optimizers()
        for group in optimizer.param_groups:
            group['weight_decay'] = self.arc_weight_decay
        return optimizer

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        return self.training_module.validation_step(batch, batch_idx)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.estimator is None:
            return super().training_step(batch, batch_idx)
        if self.trainer.current_epoch >= self.warmup_epochs:
            self.resample()
            self.estimated_architecture_step(batch, batch_idx)
        with architecture_step_held_back(self):
            return super().training_step(batch, batch_idx)

    def estimated_architecture_step(self, batch: Any, batch_idx: int) -> None:
        """Set the architecture gradients from the estimator and the terms, averaged over processes, and step."""
        weight_optimizer = next(o for o in self.trainer.optimizers if not getattr(o, 'is_arch_optimizer', False))
        problem = self.bilevel_problem(batch, batch_idx, weight_optimizer)
        alphas = problem.alphas
        architecture_optimizer = self.architecture_optimizers()
        architecture_optimizer.zero_grad()
        gradients = self.estimator(problem)
        if self.terms:
            cost = sum(term(self) for term in self.terms)
            term_gradients = torch.autograd.grad(cost, alphas, allow_unused=True)
            steering = [t for t in term_gradients if t is not None]
            if steering:  # kept as a tensor: no device sync in the step
                self.term_to_loss.append(norm(steering) / norm(gradients))
            gradients = [g if t is None else g + t for g, t in zip(gradients, term_gradients)]
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
        ``weight_optimizer`` trains (listed once per supernet), this module's architecture
        parameters, and losses that draw the same dropout masks in every pass of the estimate."""
        weights = self._of_this_supernet('weights', lambda: [p for group in weight_optimizer.param_groups
                                                             for p in group['params'] if p.requires_grad])
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
        """What the search adds to each epoch's record: its terms' diagnostics and, after an epoch
        of architecture steps, ``term_to_loss_gradient``: the median over its steps of the norm of
        the terms' gradient over the norm of the estimator's (how strongly the costs steer beside
        the validation loss)."""
        fields: dict[str, Any] = {}
        for term in self.terms:
            fields.update(term.diagnostics(self))
        ratios = [float(r) for r in self.term_to_loss if torch.isfinite(r)]
        if ratios:
            fields['term_to_loss_gradient'] = statistics.median(ratios)
        return fields

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
