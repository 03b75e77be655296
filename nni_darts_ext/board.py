"""TensorBoard event files of a trial, in ``<output_dir>/tensorboard``, for NNI's web UI.

:class:`TrialBoard` writes, to ``<output_dir>/tensorboard`` (``$NNI_OUTPUT_DIR/tensorboard``
under NNI):

- per epoch, every number of the epoch's record (:class:`~nni_darts_ext.epoch_reporter.EpochReporter`)
  as ``PHASE/NAME``: ``search/train_loss``, ``search/val_acc`` (the record's ``default``),
  ``retrain/val_loss``, ``search/normalized_entropy``, ``search/skip_connects``, ...; the step is
  the record's ``epoch``, which runs on across phases as in the web UI's curves;
- per search epoch, each choice's candidate probabilities as ``prob/CHOICE/CANDIDATE`` (the
  names NNI's one-shot modules give them), renormalised over the candidates ``export_probs``
  lists, with one custom-scalars chart per choice that draws its candidates together (a search
  converging, or collapsing into skip-connects); past :data:`PROBABILITY_SCALARS` candidates in
  all, one scalar per choice instead, ``top_prob/CHOICE``, its likeliest candidate's probability;
- at the end, the drawing of each found cell, ``cells/CELL``.

The web UI's TensorBoard button starts TensorBoard on ``tensorboard`` of the selected trials'
output directories, which NNI 3.0 takes to be ``EXPERIMENT/trials/TRIAL/output``, while its
local training service runs the trials in ``EXPERIMENT/environments/ENV/trials/TRIAL`` (their
``$NNI_OUTPUT_DIR``; microsoft/nni#5609): :func:`link_for_web_ui` links the first to the events.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from .architecture import normalized

_logger = logging.getLogger(__name__)

TENSORBOARD_DIR = 'tensorboard'
"""The folder of the trial's output directory that NNI's TensorBoard button opens."""
PROBABILITY_SCALARS = 512
"""At most this many candidate probabilities get a scalar each (every one in DARTS's space, 196)."""


def web_ui_directory() -> Path | None:
    """Where NNI 3.0's TensorBoard button reads this trial's events:
    ``EXPERIMENT/trials/TRIAL/output/tensorboard``, when ``$NNI_OUTPUT_DIR`` is
    ``EXPERIMENT/environments/ENV/trials/TRIAL``; ``None`` elsewhere (standalone, other layouts)."""
    output_dir, trial = os.environ.get('NNI_OUTPUT_DIR'), os.environ.get('NNI_TRIAL_JOB_ID')
    if not output_dir or not trial:
        return None
    trials = Path(output_dir).parent
    if trials.name != 'trials' or trials.parent.parent.name != 'environments':
        return None
    return trials.parent.parent.parent / 'trials' / trial / 'output' / TENSORBOARD_DIR


def link_for_web_ui(directory: Path) -> None:
    """Make :func:`web_ui_directory` a symbolic link to ``directory`` (TensorBoard follows it),
    unless it is ``directory`` already or holds something; an empty folder there (the button,
    pressed before this trial's first epoch, makes one) gives way to the link."""
    link = web_ui_directory()
    if link is None or link.resolve() == directory.resolve():
        return
    if link.is_dir() and not link.is_symlink() and not any(link.iterdir()):
        link.rmdir()
    if link.exists() or link.is_symlink():
        _logger.info("%s exists: the web UI's TensorBoard button shows what it holds", link)
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(directory.resolve(), target_is_directory=True)


class TrialBoard:
    """A trial's TensorBoard writer; the event file (and the web UI's link to it) is created on
    the first write, so processes that never write (ranks other than zero) leave none.

    Parameters
    ----------
    directory
        Where the event files go (``<output_dir>/tensorboard``).
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self._writer: SummaryWriter | None = None
        self._charted = False

    @property
    def writer(self) -> SummaryWriter:
        if self._writer is None:
            self._writer = SummaryWriter(str(self.directory))
            link_for_web_ui(self.directory)
        return self._writer

    def epoch(self, record: Mapping[str, Any], probabilities: Mapping[str, Mapping[Any, float]] | None = None) -> None:
        """Write one epoch's record, and the architecture's ``probabilities`` (``export_probs``) where
        given; flushed at once, so a running trial's curves grow epoch by epoch."""
        step = record['epoch']
        for name, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name != 'epoch':
                self.writer.add_scalar(f"{record['phase']}/{'val_acc' if name == 'default' else name}", value, step)
        if probabilities:
            self._probabilities(probabilities, step)
        self.writer.flush()

    def _probabilities(self, probabilities: Mapping[str, Mapping[Any, float]], step: int) -> None:
        if sum(len(distribution) for distribution in probabilities.values()) > PROBABILITY_SCALARS:
            for label, distribution in probabilities.items():
                self.writer.add_scalar(f'top_prob/{label}', max(normalized(distribution).values()), step)
            return
        for label, distribution in probabilities.items():
            for candidate, probability in normalized(distribution).items():
                self.writer.add_scalar(f'prob/{label}/{candidate}', probability, step)
        if not self._charted:
            self.writer.add_custom_scalars({'probabilities': {
                label: ['Multiline', [f'^prob/{re.escape(label)}/']] for label in probabilities}})
            self._charted = True

    def images(self, drawings: Mapping[str, Path], step: int) -> None:
        """Add the PNG files ``{cell: path}`` as ``cells/CELL`` images at ``step``."""
        for cell, path in drawings.items():
            with Image.open(path) as image:
                self.writer.add_image(f'cells/{cell}', np.asarray(image.convert('RGB')), step, dataformats='HWC')
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file, if one was opened."""
        if self._writer is not None:
            self._writer.close()
