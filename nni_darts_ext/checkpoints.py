"""Resuming a search: a checkpoint after every epoch in the trial's directory.

Lightning's ``ModelCheckpoint`` keeps the weights, the architecture parameters, both optimizers,
the learning-rate schedule and the epoch. :class:`RandomStates` adds the random generators, so
a resumed search draws the same batches as one never interrupted and ends with the same
architecture. Callbacks with state (the per-epoch records) and P-DARTS's stage ride along in
the same file, and so do the settings the search ran with (:class:`SearchSettings`): a search
resumes only with the same ones.

The checkpoint of the epoch before is kept beside it (``last.previous.ckpt``): should
``last.ckpt`` be unreadable (a full disk, a damaged copy), the search resumes from there.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

from .errors import ConfigError
from .files import write_atomically

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


SETTINGS_KEY = 'search_settings'
"""Where a checkpoint keeps the settings of the search that saved it."""


class SearchSettings(pl.Callback):
    """Saves the search's settings (a mapping of plain values) with each checkpoint, for
    :func:`checkpoint_to_resume` to compare with a resumed search's."""

    def __init__(self, settings: dict[str, Any]):
        self.settings = plain(settings)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint[SETTINGS_KEY] = self.settings


def plain(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as JSON reads them back (tuples as lists): what a checkpoint can hold and compare."""
    return json.loads(json.dumps(settings, default=str))


def previous_of(path: Path) -> Path:
    """Where the checkpoint ``path`` replaced is kept: ``last.ckpt`` -> ``last.previous.ckpt``."""
    return path.with_name(f'{path.stem}.previous{path.suffix}')


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint beside its place and moves it there, keeping the one it replaces
    (:func:`previous_of`): a process killed while saving leaves the previous checkpoint whole.

    Lightning's own writer stages each checkpoint in ``$TMPDIR`` (fsspec's transaction), so a full
    ``$TMPDIR`` would fail a trial whose output directory has room, and a kill mid-save would leave
    the staged copy there; this one writes only in the output directory, and a failed write raises
    ``OSError`` (a full disk: ``ENOSPC``) naming the file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        serialized = io.BytesIO()
        torch.save(checkpoint, serialized)  # to memory: torch's own file writer fails without errno

        def write(partial: Path) -> None:
            partial.write_bytes(serialized.getbuffer())
            if path.is_file():
                os.replace(path, previous_of(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, write)


def epoch_checkpoints(directory: Path) -> list[pl.Callback]:
    """The callbacks that write ``directory/last.ckpt`` at the end of every epoch."""
    # at the epoch's end, after its validation: a resumed search starts with the next epoch
    return [ModelCheckpoint(dirpath=directory, filename=LAST, save_on_train_epoch_end=True,
                            enable_version_counter=False),
            RandomStates()]


def checkpoint_to_resume(directory: Path, settings: dict[str, Any]) -> Path | None:
    """``directory/last.ckpt`` if a search left one there, else ``None`` (logged: the search starts afresh).

    An unreadable ``last.ckpt`` is replaced by the epoch before's (logged), if that one is readable.

    Raises
    ------
    ConfigError
        For checkpoints that are all unreadable (naming them, and that deleting them restarts
        the search), or saved by a search whose ``settings`` differ (naming the first that does).
    """
    path = directory / f'{LAST}.ckpt'
    candidates = [candidate for candidate in (path, previous_of(path)) if candidate.is_file()]
    if not candidates:
        _logger.info('no checkpoint at %s: the search starts afresh', path)
        return None
    unreadable = []
    for candidate in candidates:
        try:
            checkpoint = read_checkpoint(candidate)
        except ValueError as err:
            unreadable.append(f'{candidate} ({err})')
            continue
        _check_settings(checkpoint.get(SETTINGS_KEY), plain(settings), candidate)
        if candidate != path:
            _logger.warning('%s is unreadable: resuming from %s, the epoch before, which replaces it',
                            unreadable[0], candidate)
            os.replace(candidate, path)
        _logger.info('resuming the search from %s', path)
        return path
    one = len(unreadable) == 1
    raise ConfigError(f'resume: {" and ".join(unreadable)} {"is not a checkpoint" if one else "are not checkpoints"}; '
                      f'delete {"it" if one else "them"} to restart the search from scratch')


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, loaded as Lightning loads it: by torch's weights-only unpickler,
    which builds tensors and plain values and runs no code a file could name.

    Raises
    ------
    ValueError
        Saying what is wrong, for a file that is not a checkpoint (empty, cut short, other data).
    """
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 (a damaged file fails in torch.load's unpickler in any way)
        raise ValueError(f'{type(err).__name__}: {" ".join(str(err).split()) or "no data"}') from None
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise ValueError('no state_dict in it')
    return checkpoint


def _check_settings(saved: dict[str, Any] | None, settings: dict[str, Any], path: Path) -> None:
    """Refuse to resume from ``path`` if the search that saved it had other ``settings`` (checkpoints
    without any are taken as they are)."""
    if saved is None:
        _logger.warning('%s keeps no settings to compare: resuming from it as it is', path)
        return
    for name in dict.fromkeys([*settings, *saved]):  # trial parameters first, as the run lists them
        if name not in saved or name not in settings or saved[name] != settings[name]:
            now = f'is {settings[name]!r}' if name in settings else 'is not set'
            then = f'{name} {saved[name]!r}' if name in saved else f'no {name}'
            raise ConfigError(f'resume: {name} {now}, but the search that saved {path} ran with {then}; '
                              'resume with that, or start afresh without resume or in another output_dir')
