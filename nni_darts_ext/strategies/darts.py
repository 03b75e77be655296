"""NNI's first-order DARTS, with the validation loop turned on.

NNI's ``DARTS`` strategy returns no validation loader and its Lightning module has no
``validation_step``, so a search has no per-epoch validation accuracy. This subclass
validates the supernet on the architecture half of the data after every epoch (logged as
``val_acc``); the search itself is NNI's, unchanged. Every variant in this package builds on it.
"""

from __future__ import annotations

from typing import Any

from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule
from nni.nas.strategy import DARTS


class ValidatedDartsModule(DartsLightningModule):
    """NNI's DARTS search loop plus the evaluator's own validation step."""

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        return self.training_module.validation_step(batch, batch_idx)


class ValidatedDARTS(DARTS):
    """First-order DARTS (Liu et al., ICLR 2019) as NNI implements it, validated every epoch.

    Accepts every parameter of :class:`nni.nas.strategy.DARTS` (``arc_learning_rate``,
    ``gradient_clip_val``, ``warmup_epochs``, ...).
    """

    def configure_oneshot_module(self, training_module):
        return ValidatedDartsModule(
            training_module=training_module,
            arc_learning_rate=self.arc_learning_rate,
            gradient_clip_val=self.gradient_clip_val,
            log_prob_every_n_step=self.log_prob_every_n_step,
            warmup_epochs=self.warmup_epochs,
            penalty=self.penalty,
        )

    def val_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        return val_dataloader_fn()
