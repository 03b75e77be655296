"""Per-epoch results: to NNI when the trial runs under nnictl, always to the trial's records."""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Mapping

import nni
import pytorch_lightning as pl
import torch

from . import architecture
from .board import TrialBoard
from .collapse import CollapseMonitor

_logger = logging.getLogger(__name__)


LAUNCHED_RANK = ('RANK', 'NODE_RANK', 'LOCAL_RANK')
"""Where DDP launchers (Lightning's for ``devices: N``, torchrun) tell the processes they start their
rank, before the processes join. Not ``SLURM_PROCID``: under ``srun`` it numbers independent trials too."""


def is_rank_zero() -> bool:
    """True in the only process of a trial, or in rank 0 of a multi-process search: the one that
    writes the trial's files and reports its final result. Before the processes join, the rank the
    launcher set in the environment: the ranks Lightning starts run the trial from its beginning."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return all(os.environ.get(name, '0') == '0' for name in LAUNCHED_RANK)


def under_nni() -> bool:
    """True inside a trial that NNI's training service started."""
    return nni.get_trial_id() != 'STANDALONE'


class EpochReporter(pl.Callback):
    """After each validation epoch, record ``{default: val_acc, phase, epoch, ...}``, send it to NNI
    and write it to the optional :class:`~nni_darts_ext.board.TrialBoard` (rank zero only).

    Every record carries ``train_loss`` and ``train_acc`` (means over the epoch's training steps,
    this process's batches) and ``val_loss``. In the search phase it also carries the collapse
    diagnostics of the architecture the supernet would export now: ``arch_entropy``,
    ``normalized_entropy``, ``skip_connects``, ``parameter_free``, and what the optional
    :class:`~nni_darts_ext.collapse.CollapseMonitor` adds (``hessian_eigenvalue``); the
    monitor's early stop ends the search; the board also gets the architecture's probabilities.
    Epochs count on across phases, so the web UI draws search and retraining as one curve.
    """

    def __init__(self, phase: str, records: list[dict[str, Any]], monitor: CollapseMonitor | None = None,
                 board: TrialBoard | None = None):
        self.phase = phase
        self.records = records
        self.monitor = monitor
        self.board = board
        self.steps: list[Mapping[str, torch.Tensor]] = []

    def state_dict(self) -> dict[str, Any]:
        return {'records': list(self.records)}  # in each checkpoint: a resumed trial reports every epoch

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.records[:] = state_dict['records']

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.steps = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self.steps.append(outputs)  # the training module's {'loss', 'accuracy'}, detached

    def training_means(self) -> dict[str, float]:
        """``train_loss`` and ``train_acc``: the means over this epoch's training steps so far."""
        if not self.steps:
            return {}
        losses = torch.stack([step['loss'] for step in self.steps])
        accuracies = torch.stack([step['accuracy'] for step in self.steps])
        return {'train_loss': float(losses.mean()), 'train_acc': float(accuracies.mean())}

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        record: dict[str, Any] = {
            'default': float(trainer.callback_metrics['val_acc']),
            'phase': self.phase,
            # one record per epoch: this count runs on across phases and P-DARTS's stages
            'epoch': len(self.records) + 1,
            **self.training_means(),
            'val_loss': float(trainer.callback_metrics['val_loss']),
        }
        if self.phase == 'search' and not math.isfinite(record['val_loss']):
            # the architecture steps descend this loss: a search that diverged would still export an
            # architecture, and the epoch's checkpoint (saved after this callback) would keep it
            raise FloatingPointError(f'search validation loss became {record["val_loss"]}; lower learning_rate '
                                     'or arc_learning_rate')
        probabilities = None
        if hasattr(pl_module, 'export_probs'):
            exported = pl_module.export()
            probabilities = pl_module.export_probs()
            record['arch_entropy'] = architecture.mean_entropy(probabilities)
            record['normalized_entropy'] = architecture.normalized_entropy(probabilities)
            record['skip_connects'] = architecture.skip_connects(exported)
            record['parameter_free'] = architecture.parameter_free(exported)
            record.update(pl_module.epoch_fields())
            if self.monitor is not None:
                record.update(self.monitor.observe(trainer, pl_module, exported))
                trainer.should_stop = trainer.should_stop or bool(self.monitor.stopped)
        self.records.append(record)
        _logger.info('epoch %d (%s): %s', record['epoch'], self.phase,
                     ', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in record.items()))
        if under_nni() and trainer.is_global_zero:
            nni.report_intermediate_result(record)
        if self.board is not None and trainer.is_global_zero:
            self.board.epoch(record, probabilities)
