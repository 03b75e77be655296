"""Resuming a search: a checkpoint after every epoch in the trial's directory.

Lightning's ``ModelCheckpoint`` keeps the weights, the architecture parameters, both optimizers,
the learning-rate schedule and the epoch. :class:`RandomStates` adds the random generators, so
a resumed search draws the same batches as one never interrupted and ends with the same
architecture. Callbacks with state (the per-epoch records) and P-DARTS's stage ride along in
the same file.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

from .files import write_whole

_logger = logging.getLogger(__name__)

CHECKPOINT_DIR = 'checkpoints'
"""The folder in the trial's directory."""

LAST = 'last'
"""The one checkpoint kept, overwritten every epoch: ``last.ckpt``."""


class RandomStates(pl.Callback):
    """Saves Python's, NumPy's and torch's random states with each checkpoint; restores them on resume."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint['random_states'] = {
            'python': random.getstate(),
            # as plain values: Lightning loads checkpoints with torch's weights-only unpickler
            'numpy': [value.tolist() if isinstance(value, numpy.ndarray) else value
                      for value in numpy.random.get_state()],
            'torch': torch.get_rng_state(),
            'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        states = checkpoint['random_states']
        random.setstate(states['python'])
        name, keys, *rest = states['numpy']
        numpy.random.set_state((name, numpy.array(keys, dtype=numpy.uint32), *rest))
        torch.set_rng_state(states['torch'])
        if states['cuda']:
            torch.cuda.set_rng_state_all(states['cuda'])


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint beside its place and moves it there: a process killed while saving
    leaves the previous checkpoint whole."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        write_whole(Path(path), lambda partial: TorchCheckpointIO.save_checkpoint(self, checkpoint, partial,
                                                                                   storage_options))


def epoch_checkpoints(directory: Path) -> list[pl.Callback]:
    """The callbacks that write ``directory/last.ckpt`` at the end of every epoch."""
    # at the epoch's end, after its validation: a resumed search starts with the next epoch
    return [ModelCheckpoint(dirpath=directory, filename=LAST, save_on_train_epoch_end=True,
                            enable_version_counter=False),
            RandomStates()]


def checkpoint_to_resume(directory: Path) -> Path | None:
    """``directory/last.ckpt`` if a search left one there, else ``None`` (logged: the search starts afresh)."""
    path = directory / f'{LAST}.ckpt'
    if path.is_file():
        _logger.info('resuming the search from %s', path)
        return path
    _logger.info('no checkpoint at %s: the search starts afresh', path)
    return None
