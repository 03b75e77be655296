"""Watching a search for collapse: the validation Hessian's dominant eigenvalue, and early stops.

Two known signs that a DARTS search is collapsing into parameter-free cells:

- DARTS+ (Liang et al., 2019): the derived normal cell holds 2 or more skip-connects;
- R-DARTS (Zela et al., ICLR 2020): the dominant eigenvalue of the Hessian of the validation
  loss with respect to the architecture parameters grows; they stop when it has grown by
  about 1.3x over 5 epochs and keep the architecture of 5 epochs earlier.

:class:`CollapseMonitor` computes the eigenvalue (optional: each power iteration costs a
double backward pass per validation batch used) and applies either stop (off by default). The per-epoch skip-connect count, parameter-free count and entropy are reported for
every variant by :class:`~nni_darts_ext.epoch_reporter.EpochReporter`.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from itertools import islice
from typing import Any, Callable, Iterator, Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from . import architecture
from .errors import ConfigError, unknown_value
from .second_derivatives import DoubleBackward, dot, norm
from .strategies.search_module import SearchModule

_logger = logging.getLogger(__name__)

EARLY_STOPS = ('none', 'skip_connects', 'eigenvalue')
SKIP_CONNECT_LIMIT = 2
"""DARTS+: stop once the normal cell holds this many skip-connects."""
EIGENVALUE_GROWTH, EIGENVALUE_WINDOW = 1.3, 5
"""R-DARTS: stop once the eigenvalue has grown this much over this many epochs."""


def check_early_stop(early_stop: str, eigenvalue_batches: int) -> None:
    """Refuse an unknown stop, or the R-DARTS stop without the eigenvalue it watches."""
    if early_stop not in EARLY_STOPS:
        raise unknown_value('early_stop', early_stop, EARLY_STOPS)
    if early_stop == 'eigenvalue' and eigenvalue_batches < 1:
        raise ConfigError("early_stop 'eigenvalue' needs the eigenvalue: set eigenvalue_batches to 1 or more")


def dominant_eigenvalue(product: Callable[[list[Tensor]], list[Tensor]], like: Sequence[Tensor],
                        iterations: int = 20, tolerance: float = 1e-3, seed: int = 0) -> float:
    """The eigenvalue of largest magnitude of a symmetric operator, by power iteration.

    Parameters
    ----------
    product
        ``v -> M v`` over vectors shaped like ``like`` (lists of tensors).
    iterations, tolerance
        Stop after ``iterations``, or once the estimate changes by less than ``tolerance`` (relative).
    seed
        The start vector's seed (the same estimate every time).
    """
    generator = torch.Generator().manual_seed(seed)
    vector = [torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device) for x in like]
    estimate = 0.0
    for _ in range(iterations):
        length = float(norm(vector))
        vector = [v / length for v in vector]
        image = product(vector)
        previous, estimate = estimate, float(dot(vector, image))  # Rayleigh quotient
        vector = image
        if float(norm(vector)) == 0.0 or abs(estimate - previous) <= tolerance * abs(estimate):
            break
    return estimate


@contextmanager
def preserved_buffers(module: nn.Module) -> Iterator[None]:
    """Restore the module's buffers (batch-norm running statistics) after extra forward passes."""
    saved = [b.detach().clone() for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(module.buffers(), saved):
                buffer.copy_(value)


def validation_hessian_eigenvalue(module: SearchModule, batches: Sequence[Any]) -> float:
    """The dominant eigenvalue of ``d2 L_val / d alpha2`` of a DARTS Lightning module, on ``batches``.

    An observer: the batch-norm statistics and the parameters' ``requires_grad`` (off while the
    architecture warms up) are left as they were.
    """
    alphas = module.arch_parameters()
    trainable = [a.requires_grad for a in alphas]

    def loss() -> Tensor:
        return sum(module.loss(batch, index) for index, batch in enumerate(batches)) / len(batches)

    with torch.enable_grad(), preserved_buffers(module):
        try:
            for alpha in alphas:
                alpha.requires_grad_(True)
            # one graph of the loss's gradient serves every iteration's product
            return dominant_eigenvalue(DoubleBackward().at(loss, alphas, []).hessian_product, alphas)
        finally:
            for alpha, flag in zip(alphas, trainable):
                alpha.requires_grad_(flag)


class CollapseMonitor:
    """Per search epoch: the eigenvalue (when ``eigenvalue_batches > 0``) and the chosen early stop.

    :class:`~nni_darts_ext.epoch_reporter.EpochReporter` calls :meth:`observe` after each search
    epoch, adds what it returns to the epoch's record, and ends the search once :attr:`stopped`.

    Parameters
    ----------
    eigenvalue_batches
        Validation batches the Hessian is averaged over; 0 computes no eigenvalue.
    early_stop
        ``'none'``, ``'skip_connects'`` (DARTS+) or ``'eigenvalue'`` (R-DARTS; needs
        ``eigenvalue_batches > 0``).

    Attributes
    ----------
    stopped
        Why the search stopped early ('' if it did not).
    chosen
        The architecture to keep when the stop rolls back (R-DARTS), else ``None``.
    """

    def __init__(self, eigenvalue_batches: int = 0, early_stop: str = 'none'):
        check_early_stop(early_stop, eigenvalue_batches)
        self.eigenvalue_batches = eigenvalue_batches
        self.early_stop = early_stop
        self.eigenvalues: list[float] = []
        self.architectures: list[dict[str, Any]] = []
        self.stopped = ''
        self.chosen: dict[str, Any] | None = None

    def observe(self, trainer: pl.Trainer, module: SearchModule, exported: dict[str, Any]) -> dict[str, float]:
        """Take one epoch's measurements; returns the fields for the epoch's record."""
        self.architectures.append(exported)
        fields = {}
        if self.eigenvalue_batches:
            # Lightning runs validation hooks in inference mode, where nothing can be differentiated
            with torch.inference_mode(False):
                self.eigenvalues.append(validation_hessian_eigenvalue(module, self._fixed_batches(trainer, module)))
            fields['hessian_eigenvalue'] = self.eigenvalues[-1]
        self.stopped = self._reason()
        if self.stopped:
            _logger.info('search stopped early after epoch %d: %s', trainer.current_epoch + 1, self.stopped)
        return fields

    def _fixed_batches(self, trainer: pl.Trainer, module: SearchModule) -> list[Any]:
        """The first batches of the validation set, unshuffled: the same every epoch, and drawing
        them takes nothing from the random stream the search uses."""
        loader = trainer.val_dataloaders
        in_order = DataLoader(loader.dataset, batch_size=loader.batch_size, collate_fn=loader.collate_fn)
        return [module.transfer_batch_to_device(batch, module.device, 0)
                for batch in islice(in_order, self.eigenvalue_batches)]

    def _reason(self) -> str:
        if self.early_stop == 'skip_connects':
            count = architecture.skip_connects(self.architectures[-1])
            if count >= SKIP_CONNECT_LIMIT:
                return f'{count} skip-connects in the normal cell (DARTS+ limit {SKIP_CONNECT_LIMIT})'
        if self.early_stop == 'eigenvalue' and len(self.eigenvalues) > EIGENVALUE_WINDOW:
            before, now = self.eigenvalues[-1 - EIGENVALUE_WINDOW], self.eigenvalues[-1]
            if before > 0 and now / before > EIGENVALUE_GROWTH:
                self.chosen = self.architectures[-1 - EIGENVALUE_WINDOW]
                return (f'Hessian eigenvalue grew {now / before:.2f}x over {EIGENVALUE_WINDOW} epochs '
                        f'(R-DARTS limit {EIGENVALUE_GROWTH}); kept the architecture of {EIGENVALUE_WINDOW} epochs before')
        return ''
