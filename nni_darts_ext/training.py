"""The Lightning module that trains one network (a supernet while searching, the found
architecture when retraining) and the trainer settings every run shares."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import nn
from torch.optim.swa_utils import update_bn
from nni.nas.evaluator.pytorch import LightningModule, Trainer
from nni.nas.hub.pytorch.utils.nn import DropPath

from .checkpoints import AtomicCheckpointIO, epoch_checkpoints
from .errors import ConfigError


CRASHING_CHANNELS = 8
"""In channels-last float32 on the CPU, torch 2.14's oneDNN backward of a 1x1 convolution with a
stride and fewer input channels than this corrupts the heap on some processors (AVX2 ones: an
abort, or wrong values)."""


def refuse_crashing_convolutions(model: nn.Module) -> None:
    """Raise :class:`ConfigError` when ``model`` holds a convolution whose channels-last CPU backward
    corrupts memory (:data:`CRASHING_CHANNELS`): NNI's ``FactorizedReduce`` at a narrow width, or
    at 1/K of a narrow width with PC-DARTS."""
    for name, module in model.named_modules():
        if (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride != (1, 1)
                and module.groups == 1 and 1 < module.in_channels < CRASHING_CHANNELS):
            raise ConfigError(f'channels_last: {name} is a strided 1x1 convolution of {module.in_channels} input '
                              f'channels, whose channels-last backward on the CPU (torch {torch.__version__}) '
                              f'corrupts memory below {CRASHING_CHANNELS}; set channels_last false, or widen the '
                              'space (search_width, or a smaller k with pcdarts)')


class ClassifierModule(LightningModule):
    """Cross-entropy classification with SGD and a cosine learning rate, as in DARTS.

    Logs ``train_loss``, ``train_acc`` per step and ``val_loss``, ``val_acc`` per epoch; each
    training step also returns its ``loss`` and ``accuracy``, which callbacks average over the epoch.

    Parameters
    ----------
    learning_rate, min_learning_rate
        The cosine schedule runs from the first to the second over the trainer's epochs.
    momentum, weight_decay
        SGD settings (DARTS: 0.9 and 3e-4).
    auxiliary_weight
        The weight of the auxiliary head's cross-entropy in the training loss, for a network
        whose training forward returns ``(logits, auxiliary logits)`` (DARTS: 0.4); the accuracy
        and every evaluation use the logits alone.
    learning_rate_setting
        The name of the setting that gave ``learning_rate`` (the search's or the retraining's):
        a diverging loss says to lower it.
    channels_last
        Hold the network's weights and feed its images in the channels-last layout (the same
        values; faster convolutions on CPUs, and on GPUs in reduced precision).
    """

    def __init__(self, learning_rate: float = 0.025, min_learning_rate: float = 0.001,
                 momentum: float = 0.9, weight_decay: float = 3e-4, auxiliary_weight: float = 0.0,
                 learning_rate_setting: str = 'learning_rate', channels_last: bool = False):
        super().__init__()
        self.learning_rate = learning_rate
        self.learning_rate_setting = learning_rate_setting
        self.min_learning_rate = min_learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.auxiliary_weight = auxiliary_weight
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._checked_model: int | None = None  # the network refuse_crashing_convolutions passed

    def setup(self, stage: str) -> None:
        if self.memory_format is torch.channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if (self.memory_format is torch.channels_last and self._checked_model != id(self.model)
                and images.device.type == 'cpu' and images.dtype == torch.float32):
            refuse_crashing_convolutions(self.model)
            self._checked_model = id(self.model)
        return self.model(images.contiguous(memory_format=self.memory_format))

    def _loss_and_accuracy(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        outputs = self(images)
        # a network with an auxiliary head returns (logits, auxiliary logits) while training
        logits, auxiliary_logits = outputs if isinstance(outputs, tuple) else (outputs, None)
        loss = F.cross_entropy(logits, labels)
        if auxiliary_logits is not None and self.auxiliary_weight:
            loss = loss + self.auxiliary_weight * F.cross_entropy(auxiliary_logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return loss, accuracy

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        loss, accuracy = self._loss_and_accuracy(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f'training loss became {loss.item()}; lower {self.learning_rate_setting}')
        self.log('train_loss', loss, prog_bar=True)
        self.log('train_acc', accuracy, prog_bar=True)
        return {'loss': loss, 'accuracy': accuracy.detach()}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, accuracy = self._loss_and_accuracy(batch)
        # averaged over processes: every rank reports the accuracy on the whole validation set
        self.log('val_loss', loss, on_epoch=True, sync_dist=True)
        self.log('val_acc', accuracy, on_epoch=True, prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> Any:
        # foreach: one call per update for all tensors (torch's CPU default loops over a supernet's thousands)
        optimizer = torch.optim.SGD(self.parameters(), lr=self.learning_rate, momentum=self.momentum,
                                    weight_decay=self.weight_decay, foreach=True)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.trainer.max_epochs),
                                                              eta_min=self.min_learning_rate)
        return [optimizer], [schedule]


class BatchNormStatistics(pl.Callback):
    """Before each validation, re-estimates every BatchNorm's running mean and variance over
    ``loader`` for the weights as they are now.

    The running averages (momentum 0.1) trail the weights: after a first epoch at a high
    learning rate they still describe the initial network, and the validation accuracy in eval
    mode reads chance although the network has learned. One forward pass over the training
    images (no gradients) gives the statistics of the current weights, so each epoch's
    validation accuracy is that of the network after the epoch's training. The pass draws
    nothing from the training's random state.
    """

    def __init__(self, loader: Any):
        self.loader = loader

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        with torch.random.fork_rng(devices=[]):
            update_bn(self.loader, pl_module, pl_module.device)


def make_trainer(max_epochs: int, accelerator: str = 'cpu', devices: int = 1,
                 callbacks: list | None = None, gradient_clip_val: float | None = None,
                 checkpoint_dir: Path | None = None) -> Trainer:
    """A quiet Lightning trainer: no logger files, a progress bar only on a terminal, and a
    checkpoint after every epoch in ``checkpoint_dir`` if one is given."""
    checkpoints = epoch_checkpoints(checkpoint_dir) if checkpoint_dir else []
    return Trainer(
        max_epochs=max_epochs, accelerator=accelerator, devices=devices,
        callbacks=[*(callbacks or []), SharedBatchNormStatistics(), *checkpoints, StopWhenTerminated()],
        logger=False, enable_checkpointing=bool(checkpoints), enable_model_summary=False,
        plugins=[AtomicCheckpointIO()] if checkpoints else None,
        enable_progress_bar=sys.stderr.isatty(), num_sanity_val_steps=0,
        gradient_clip_val=gradient_clip_val,
    )


class SharedBatchNormStatistics(pl.Callback):
    """Before each validation, every process's BatchNorm running statistics become their mean over
    the processes (a no-op in one process).

    Each process's training steps update its running statistics on its own share of the batches;
    the weights stay equal (their gradients are averaged), the statistics drift apart. Averaged, the
    validation sees one network on every process, and a checkpoint, which holds process zero's,
    holds what every process has: a resumed search validates as the uninterrupted one did.
    """

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size == 1:
            return
        for module in pl_module.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and module.track_running_stats:
                for statistic in (module.running_mean, module.running_var):
                    if statistic is not None:
                        torch.distributed.all_reduce(statistic)
                        statistic /= trainer.world_size


class StopWhenTerminated(pl.Callback):
    """A fit that received SIGTERM ends in Lightning's ``SIGTERMException``, also where the signal came
    after the loops' last look (then Lightning's fit would return as if complete, and the trial go on)."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.received_sigterm:
            raise SIGTERMException


@contextlib.contextmanager
def terminated_by_sigterm() -> Iterator[None]:
    """Within it, SIGTERM (how ``nnictl stop`` ends a trial) raises Lightning's ``SIGTERMException``
    (a ``SystemExit``: catch it to exit non-zero): at once outside a fit, at the next batch inside one,
    where Lightning's own handler stands in for this one and stops the fit (its other processes too)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread handles signals
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        if signal.getsignal(signal.SIGTERM) is stop:  # else a fit's handler called this one: the fit stops itself
            raise SIGTERMException

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class DropPathSchedule(pl.Callback):
    """DARTS's drop-path schedule: at the start of epoch ``e`` of ``E``, every NNI ``DropPath``
    of the trained network drops with probability ``rate * e / E`` (0 in the first epoch);
    ``DropPath`` drops nothing in evaluation mode."""

    def __init__(self, rate: float):
        self.rate = rate

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        probability = self.rate * trainer.current_epoch / trainer.max_epochs
        for module in pl_module.modules():
            if isinstance(module, DropPath):
                module.drop_prob = probability


def check_accelerator(accelerator: str, devices: int) -> None:
    """Refuse, before any work, a GPU ``accelerator`` where no GPU is available, and more GPU
    ``devices`` than there are (Lightning would stop with a traceback once the trainer is made)."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if accelerator in ('gpu', 'cuda') and not gpus:
        raise ConfigError(f'accelerator {accelerator!r}: no CUDA GPU is available here; accepted here: auto, cpu')
    if (accelerator in ('gpu', 'cuda') or accelerator == 'auto' and gpus) and devices > gpus:
        raise ConfigError(f'devices ({devices}) exceeds the {gpus} CUDA GPU{"s" if gpus > 1 else ""} available here; '
                          f'accepted: 1 to {gpus}, or accelerator cpu')


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of a model, without an auxiliary head (used only in training; DARTS
    does not count it either)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if p.requires_grad and 'auxiliary_head' not in name.split('.'))
