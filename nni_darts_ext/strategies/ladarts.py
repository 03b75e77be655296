"""LA-DARTS (Xu et al., arXiv 2001.06392): a differentiable latency loss from a predictor trained
on latencies measured on the user's own device.

Before the search, random architectures of the space are built as the networks that will be
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

import os
from typing import Any, Sequence

import torch
from torch import Tensor
from nni.nas.nn.pytorch import ModelSpace

from ..errors import ConfigError, check_directory, check_number, choose
from ..latency.cache import DEFAULT_DIRECTORY
from ..latency.measurement import TimingSettings, measure
from ..latency.profile import PREDICTORS, LatencyProfile, deployed, profile_space
from .darts import ValidatedDARTS, ValidatedDartsModule


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
            raise choose('latency_predictor', predictor, PREDICTORS)
        self.weight = float(weight)
        self.target_ms = target_ms
        self.predictor = predictor
        self.profile: LatencyProfile | None = None

    def expected_latency_ms(self, module: ValidatedDartsModule) -> Tensor:
        """The predicted latency of the supernet's softmax encoding (a scalar, differentiable)."""
        if self.profile is None:
            raise RuntimeError('the latency term has no profile yet: LatencyAwareDARTS.mutate_model measures it')
        return self.profile.predictor(self.predictor)(self.profile.encoding.probabilities(module))

    def __call__(self, module: ValidatedDartsModule) -> Tensor:
        latency = self.expected_latency_ms(module)
        if self.target_ms is not None:
            latency = torch.relu(latency - self.target_ms)
        return self.weight * latency

    def diagnostics(self, module: ValidatedDartsModule) -> dict[str, float]:
        with torch.no_grad():
            return {'expected_latency_ms': round(float(self.expected_latency_ms(module)), 4)}


class LatencyAwareDARTS(ValidatedDARTS):
    """First-order DARTS plus LA-DARTS's differentiable latency loss, on spaces of NNI ``Cell`` s.

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
        One image's ``(channels, height, width)``; the trial sets it from the data.
    **kwargs
        :class:`~nni_darts_ext.strategies.darts.ValidatedDARTS` parameters (an
        ``architecture_gradient`` estimator too: the latency term adds to any).
    """

    def __init__(self, *, latency_weight: float = 0.01, latency_target_ms: float | None = None,
                 latency_predictor: str = 'lookup', latency_device: str = 'cpu', latency_batch: int = 1,
                 latency_warmup: int = 3, latency_repeats: int = 11, latency_threads: int = 1,
                 latency_samples: int = 40, latency_cache: str | os.PathLike | None = None,
                 input_shape: Sequence[int] | None = None, **kwargs: Any):
        term = LatencyTerm(latency_weight, latency_target_ms, latency_predictor)
        check_directory('latency_cache', latency_cache or DEFAULT_DIRECTORY)
        super().__init__(architecture_term=term, **kwargs)
        self.latency_term = term
        self.timing = TimingSettings(latency_device, latency_batch, latency_warmup, latency_repeats, latency_threads)
        self.samples = latency_samples
        self.cache = latency_cache or DEFAULT_DIRECTORY
        self.input_shape = input_shape
        self.deployed_space: ModelSpace | None = None

    def deploy(self, space: ModelSpace, input_shape: Sequence[int]) -> None:
        """Time architectures as networks of ``space`` (e.g. at the evaluation size) on ``input_shape``
        instead of the searched space at its own size."""
        self.deployed_space = space
        self.input_shape = tuple(input_shape)

    def mutate_model(self, model: ModelSpace) -> ModelSpace:
        """Measure (or load) the latency profile, then build the supernet as DARTS does."""
        if self.input_shape is None:
            raise ConfigError('LatencyAwareDARTS needs input_shape, one image as (channels, height, width)')
        self.deployed_space = self.deployed_space or model
        if self.latency_term.profile is None:  # once: P-DARTS's stages (composed) build supernets again
            self.latency_term.profile = profile_space(self.deployed_space, self.input_shape, self.timing,
                                                      self.samples, self.cache)
        return super().mutate_model(model)

    def search_summary(self, found: dict[str, Any]) -> dict[str, float]:
        """The predicted and the measured latency of the ``found`` architecture, as deployed, and the
        predictors' held-out errors (percent)."""
        profile = self.latency_term.profile
        if profile is None or self.deployed_space is None:
            raise RuntimeError('no latency profile: call mutate_model first')
        with torch.no_grad():
            predicted = float(profile.predictor(self.latency_term.predictor)(profile.encoding.one_hot(found)))
        measured = measure([deployed(self.deployed_space, found)], self.input_shape, self.timing)[0].total_ms
        return {**super().search_summary(found),
                'predicted_latency_ms': round(predicted, 4), 'measured_latency_ms': round(measured, 4),
                'lookup_error_pct': round(profile.errors['lookup'], 2),
                'network_error_pct': round(profile.errors['network'], 2)}
