"""LA-DARTS (Xu et al., arXiv 2001.06392): a differentiable latency loss from a predictor trained
on latencies measured on the user's own device.

Before the search, random architectures of the space (of NNI Cells, LayerChoices, InputChoices,
Repeats: :class:`~nni_darts_ext.latency.encoding.Encoding`) are built as the networks that will be
deployed (by default at the evaluation size the trial retrains) and timed on the named device;
a lookup table of in-place operation latencies and a small regression network learn to predict
them from the architecture encoding (:mod:`nni_darts_ext.latency`). During the search the
encoding is the supernet's softmaxes, so the predicted ("expected") latency is a differentiable
function of the architecture parameters, and every architecture step minimises::

    cross-entropy + lambda * LAT(softmax(alpha))           or, with a target latency T,
    cross-entropy + lambda * max(0, LAT(softmax(alpha)) - T)

NNI's ``penalty=`` cannot do this: it receives the probabilities as plain floats, so the
architecture parameters get no gradient from it.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor
from nni.nas.evaluator.pytorch import Lightning
from nni.nas.nn.pytorch import ModelSpace

from ..errors import ConfigError, check_directory, check_number, unknown_value
from ..latency.cache import DEFAULT_DIRECTORY
from ..latency.measurement import TimingSettings, describe_device, measure, resolve_device
from ..latency.profile import PREDICTORS, LatencyProfile, deployed, profile_space
from ..registry import preset
from .search import DifferentiableSearch
from .search_module import SearchModule
from .slots import SlotFiller, Technique

_logger = logging.getLogger(__name__)


class LatencyTerm:
    """``lambda * LAT(encoding)`` (or the hinge on a target) as an architecture term of the search.

    Parameters
    ----------
    weight
        ``lambda``, per millisecond: 0 turns the term off (the search is first-order DARTS).
    target_ms
        ``None``: penalize the whole predicted latency. Otherwise only what exceeds it.
    predictor
        ``'lookup'`` or ``'network'``: which of the profile's predictors is differentiated.
    """

    def __init__(self, weight: float, target_ms: float | None = None, predictor: str = 'lookup'):
        check_number('latency_weight', weight)
        check_number('latency_target_ms', target_ms, strict=True, optional=True)
        if predictor not in PREDICTORS:
            raise unknown_value('latency_predictor', predictor, PREDICTORS)
        self.weight = float(weight)
        self.target_ms = target_ms
        self.predictor = predictor
        self.profile: LatencyProfile | None = None

    def expected_latency_ms(self, module: SearchModule) -> Tensor:
        """The predicted latency of the supernet's softmax encoding (a scalar, differentiable)."""
        if self.profile is None:
            raise RuntimeError("the latency term has no profile yet: the search's mutate_model (or, without "
                               'input_shape, mutate_evaluator) measures it')
        return self.profile.predict(self.predictor, self.profile.encoding.probabilities(module))

    def __call__(self, module: SearchModule) -> Tensor:
        latency = self.expected_latency_ms(module)
        if self.target_ms is not None:
            latency = torch.relu(latency - self.target_ms)
        return self.weight * latency

    def diagnostics(self, module: SearchModule) -> dict[str, float]:
        with torch.no_grad():
            return {'expected_latency_ms': round(float(self.expected_latency_ms(module)), 4)}


PROFILE_REPEATS = 11
"""Timed rounds per network of a latency profile: fewer than a trial's final measurement (15,
:class:`~nni_darts_ext.latency.measurement.TimingSettings`), as a profile times dozens of networks."""


class LatencyLoss(Technique):
    """LA-DARTS's technique: a latency term in the terms slot, on spaces of NNI ``Cell`` s,
    ``LayerChoice`` s, ``InputChoice`` s and ``Repeat`` s (NNI's hub ProxylessNAS, a user's own).

    Parameters
    ----------
    latency_weight
        ``lambda`` (per millisecond predicted).
    latency_target_ms
        A target latency: only the excess is penalized (``None``: all of it).
    latency_predictor
        ``'lookup'`` (default: the lower held-out error on the quick-start space, and exact in
        expectation) or ``'network'`` (the paper's regression network, here a correction of the table).
    latency_device, latency_batch, latency_warmup, latency_repeats, latency_threads
        How the networks are timed (:class:`~nni_darts_ext.latency.measurement.TimingSettings`).
    latency_samples
        Random architectures measured; a quarter are held out to score the predictors.
    latency_cache
        The folder of measurement files (default ``~/.cache/nni-darts-ext/latency``).
    input_shape
        One image's shape, ``(channels, height, width)``, on which the deployed network is timed. Not
        given, the trial sets it from the data; outside a trial it is read from the evaluator's first
        training batch (logged), and the latency is measured when the evaluator is mutated instead of
        the model. Give it where the network is deployed on other images than those searched on (a
        search at 16x16 for a network that will run on 3x32x32).
    """
    name = 'ladarts'
    deploys = True

    def __init__(self, *, latency_weight: float = 0.01, latency_target_ms: float | None = None,
                 latency_predictor: str = 'lookup', latency_device: str = 'cpu', latency_batch: int = 1,
                 latency_warmup: int = 3, latency_repeats: int = PROFILE_REPEATS, latency_threads: int = 1,
                 latency_samples: int = 40, latency_cache: str | os.PathLike | None = None,
                 input_shape: Sequence[int] | None = None):
        self.term = LatencyTerm(latency_weight, latency_target_ms, latency_predictor)
        check_directory('latency_cache', latency_cache or DEFAULT_DIRECTORY)
        self.timing = TimingSettings(latency_device, latency_batch, latency_warmup, latency_repeats, latency_threads)
        self.samples = latency_samples
        self.cache = latency_cache or DEFAULT_DIRECTORY
        self.input_shape = None if input_shape is None else checked_shape(input_shape)
        self.deployed_space: ModelSpace | None = None
        self.kept: Path | None = None
        self.reuse_kept = False

    def fill(self, slots: SlotFiller) -> None:
        slots.add_term(self.term)

    def deploy(self, space: ModelSpace, input_shape: tuple[int, ...]) -> None:
        """Time architectures as networks of ``space`` (e.g. at the evaluation size) instead of the
        searched space at its own size, on ``input_shape`` unless the strategy was given its own."""
        self.deployed_space = space
        if self.input_shape is None:
            self.input_shape = tuple(input_shape)

    def keep_measurements(self, directory: Path, reuse: bool) -> None:
        """Copy the measurements the profile is fitted on into ``directory``; with ``reuse``, fit it
        on the copy there if it holds them all, whatever became of the cache."""
        self.kept, self.reuse_kept = directory, reuse

    def before_supernet(self, model: ModelSpace) -> None:
        """Measure (or load) the latency profile. Without an input shape the profile waits for the
        evaluator (:meth:`prepare_evaluator`), and a copy of ``model`` as written is kept to time:
        ``model`` itself becomes the supernet."""
        if self.deployed_space is None:
            self.deployed_space = model if self.input_shape is not None else copy.deepcopy(model)
        if self.input_shape is not None:
            self._profile()

    def prepare_evaluator(self, evaluator: Lightning) -> None:
        """Without an input shape, read it from ``evaluator`` 's first training batch and measure the profile."""
        if self.term.profile is None:
            if self.input_shape is None:
                self.input_shape = first_image_shape(evaluator)
                _logger.info('LA-DARTS times networks on input_shape %s, one image of the evaluator\'s first '
                             'training batch', list(self.input_shape))
            self._profile()

    def _profile(self) -> None:
        """The latency profile, once: P-DARTS's stages (composed) build supernets again. Measuring
        builds networks and random images; the random state is left as it was, so the search draws
        the same whether the profile was measured now or read from the cache."""
        if self.term.profile is None:
            if self.deployed_space is None:
                raise RuntimeError('the latency profile comes after mutate_model, which keeps the space to time')
            device = resolve_device(self.timing.device)
            with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
                self.term.profile = profile_space(self.deployed_space, self.input_shape, self.timing,
                                                  self.samples, self.cache, self.kept, self.reuse_kept)

    def summary(self, found: dict[str, Any]) -> dict[str, Any]:
        """The predicted and the measured latency of the ``found`` architecture, as deployed, the
        predictors' held-out errors (percent), and the device they are measured on."""
        profile = self.term.profile
        if profile is None or self.deployed_space is None:
            raise RuntimeError('no latency profile: call mutate_model first')
        with torch.no_grad():
            predicted = float(profile.predict(self.term.predictor, profile.encoding.one_hot(found)))
        measured = measure([deployed(self.deployed_space, found)], self.input_shape, self.timing)[0].total_ms
        return {'predicted_latency_ms': round(predicted, 4), 'measured_latency_ms': round(measured, 4),
                'lookup_error_pct': round(profile.errors['lookup'], 2),
                'network_error_pct': round(profile.errors['network'], 2),
                'latency_device': describe_device(self.timing.device)}


class LatencyAwareDARTS(DifferentiableSearch):
    """First-order DARTS plus LA-DARTS's differentiable latency loss: :class:`LatencyLoss`'s options and
    :class:`~nni_darts_ext.strategies.search.DifferentiableSearch`'s (an ``estimator`` too: the
    latency term adds to any)."""
    techniques = (LatencyLoss,)


# DARTS's architecture optimizer; lambda per predicted millisecond (see the README's LA-DARTS section)
preset('ladarts', 'LA-DARTS (Xu et al., arXiv 2001.06392): a differentiable latency loss from measured latencies',
       LatencyAwareDARTS)


def checked_shape(input_shape: Any) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive integers.

    Raises
    ------
    ConfigError
        For anything else.
    """
    if (isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or not input_shape
            or not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in input_shape)):
        raise ConfigError(f"input_shape must be a list of positive integers, one image's (channels, height, width), "
                          f'got {input_shape!r}')
    return tuple(input_shape)


def first_image_shape(evaluator: Lightning) -> tuple[int, ...]:
    """One image's shape (without the batch dimension): the first tensor of the evaluator's first
    training batch (of its first loader, where it has several). The random state is left as it was,
    so the search draws what it would have.

    Raises
    ------
    ConfigError
        If that batch holds no tensor with a batch dimension.
    """
    loaders = evaluator.datamodule.train_dataloader() if evaluator.datamodule is not None else \
        evaluator.train_dataloaders
    while isinstance(loaders, (Mapping, list, tuple)):
        loaders = next(iter(loaders.values())) if isinstance(loaders, Mapping) else loaders[0]
    with torch.random.fork_rng(devices=[]):
        images = _first_tensor(next(iter(loaders)))
    if images is None or images.dim() < 2:
        raise ConfigError("LatencyAwareDARTS needs input_shape, one image's (channels, height, width): the "
                          "evaluator's first training batch holds no batch of images to read it from")
    return tuple(images.shape[1:])


def _first_tensor(batch: Any) -> Tensor | None:
    """The first tensor of ``batch``, depth first through tuples, lists and dicts."""
    if isinstance(batch, Tensor):
        return batch
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    return next((tensor for tensor in map(_first_tensor, items) if tensor is not None), None)
