"""A space's latency profile on one device: measured samples, both predictors, their held-out error.

Random architectures of the space are built as the deployed networks and timed
(:mod:`.measurement`); probe architectures time every candidate of every choice in place (each
operation on each cell edge, each ``LayerChoice`` candidate, ...) for the lookup table. The table
is calibrated and the regression network trained on the first samples; both are scored on the rest
(mean absolute percentage error), beside the error of predicting the training mean, which says how
much the predictors know. Everything measured goes through the cache.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from nni.nas.nn.pytorch import ModelSpace
from nni.nas.space import model_context

from ..errors import check_number
from .cache import LatencyCache
from .encoding import Encoding, Part
from .measurement import TimingSettings, describe_device, measure
from .predictor import LatencyNetwork, LookupTable, mean_absolute_percentage_error

_logger = logging.getLogger(__name__)

PREDICTORS = ('network', 'lookup')


def deployed(space: ModelSpace, architecture: dict[str, Any]) -> nn.Module:
    """The network of ``architecture``, built directly in NNI's frozen context.

    The same modules ``space.freeze(architecture)`` gives, without deep-copying the whole space
    first (about 6x faster on the quick-start space, which matters with dozens of samples).
    """
    with model_context(architecture):
        return type(space)(*getattr(space, 'trace_args', ()), **space.trace_kwargs)


@dataclass
class LatencyProfile:
    """What LA-DARTS knows about a space's latency on a device.

    Attributes
    ----------
    encoding
        The architecture encoding both predictors read.
    lookup, network
        The two predictors (ms).
    errors
        Held-out mean absolute percentage error of each and of predicting the training samples'
        mean latency: ``{'lookup': ..., 'network': ..., 'mean': ...}``.
    samples
        Architectures measured (training and held-out together).
    """
    encoding: Encoding
    lookup: LookupTable
    network: LatencyNetwork
    errors: dict[str, float]
    samples: int

    def predictor(self, name: str) -> nn.Module:
        return {'lookup': self.lookup, 'network': self.network}[name]

    def predict(self, name: str, encoding: Tensor) -> Tensor:
        """Predictor ``name`` 's latency of ``encoding`` (ms), on the encoding's device: a supernet
        searched on a GPU gives its probabilities there."""
        return self.predictor(name).to(encoding.device)(encoding)


def profile_space(space: ModelSpace, input_shape: Sequence[int], settings: TimingSettings, samples: int,
                  cache_directory: str | os.PathLike, kept_directory: str | os.PathLike | None = None,
                  reuse_kept: bool = False, held_out: float = 0.25, seed: int = 0) -> LatencyProfile:
    """Measure (or load) ``samples`` random architectures and the lookup table; fit and score the predictors.

    ``kept_directory``: a second cache, the search's own, that receives the measurements the
    profile is fitted on; with ``reuse_kept`` they are read from there first (a resumed search).
    """
    check_number('latency_samples', samples, integer=True, minimum=4)  # some train, some are held out
    encoding = Encoding.of(space)
    cache = LatencyCache(cache_directory, space, input_shape, settings)
    kept = None if kept_directory is None else LatencyCache(kept_directory, space, input_shape, settings)
    content = kept.load(encoding) if kept is not None and reuse_kept else {'samples': []}
    if len(content['samples']) < samples or 'lookup' not in content:
        content = cache.load(encoding)
        generator = random.Random(seed)
        missing = [encoding.sample(generator) for _ in range(samples)][len(content['samples']):]
        if missing or 'lookup' not in content:
            _logger.info('measuring %d architectures on %s (cache: %s)', len(missing),
                         describe_device(settings.device), cache.path)
            content = _measured(space, encoding, input_shape, settings, missing, content)
            cache.save(content)
        if kept is not None:
            kept.save({'samples': content['samples'][:samples], 'lookup': content['lookup']})
    measured = content['samples'][:samples]
    encodings = torch.stack([encoding.one_hot(sample['architecture']) for sample in measured])
    latencies = torch.tensor([sample['latency_ms'] for sample in measured])
    training = max(2, min(samples - 2, round(samples * (1 - held_out))))
    lookup = LookupTable(content['lookup']['base_ms'], torch.tensor(content['lookup']['table']))
    lookup.calibrate(encodings[:training], latencies[:training])
    network = LatencyNetwork(lookup).fit(encodings[:training], latencies[:training], seed=seed)
    held_out_latencies = latencies[training:]
    with torch.no_grad():
        errors = {name: mean_absolute_percentage_error(predictor(encodings[training:]), held_out_latencies)
                  for name, predictor in (('lookup', lookup), ('network', network))}
    errors['mean'] = mean_absolute_percentage_error(latencies[:training].mean().expand_as(held_out_latencies),
                                                    held_out_latencies)
    _logger.info('latency predictors on %s, held-out error over %d architectures: lookup %.1f %%, network %.1f %% '
                 '(predicting the mean: %.1f %%)', describe_device(settings.device), samples - training,
                 errors['lookup'], errors['network'], errors['mean'])
    if min(errors['lookup'], errors['network']) >= errors['mean']:
        # seen when other processes shared the CPU while measuring: the latencies were mostly noise
        _logger.warning('the latency predictors do no better than predicting the mean: the measurements look like '
                        'noise (did other processes share the device?); delete %s to measure again', cache.path)
    return LatencyProfile(encoding, lookup, network, errors, samples)


def _measured(space: ModelSpace, encoding: Encoding, input_shape: Sequence[int], settings: TimingSettings,
              architectures: list[dict[str, Any]], content: dict[str, Any]) -> dict[str, Any]:
    """``content`` with ``architectures`` measured and appended, and the lookup table if it had none.

    The samples and the probes are timed in the same interleaved rounds.
    """
    probes = [] if 'lookup' in content else encoding.probes()
    networks = [deployed(space, architecture) for architecture in architectures + probes]
    watched = [[] for _ in architectures] + [[part.module for part in encoding.parts(network, probe)]
                                             for network, probe in zip(networks[len(architectures):], probes)]
    timed = measure(networks, input_shape, settings, watched)
    samples = content['samples'] + [{'architecture': architecture, 'latency_ms': result.total_ms}
                                    for architecture, result in zip(architectures, timed)]
    updated = {**content, 'samples': samples}
    if probes:
        updated['lookup'] = _lookup_table(encoding, networks[len(architectures):], probes, timed[len(architectures):])
    return updated


def _lookup_table(encoding: Encoding, networks: list[nn.Module], probes: list[dict[str, Any]],
                  timed: list[Any]) -> dict[str, Any]:
    """Each (row, column)'s in-place latency, summed over the modules sharing the row in a probe and
    averaged over the probes that hold it; the rest of the network's latency, the median over probes."""
    total = torch.zeros(encoding.shape)
    count = torch.zeros(encoding.shape)
    bases = []
    for network, probe, result in zip(networks, probes, timed):
        parts = encoding.parts(network, probe)
        own = _own_ms(parts, result.modules_ms)
        in_probe = torch.zeros(encoding.shape)
        held = torch.zeros(encoding.shape, dtype=torch.bool)
        for part, milliseconds in zip(parts, own):
            in_probe[part.row, list(part.columns)] += milliseconds
            held[part.row, list(part.columns)] = True
        total += in_probe
        count += held
        bases.append(result.total_ms - sum(own))
    table: Tensor = total / count.clamp(min=1)
    return {'base_ms': float(torch.tensor(bases).median()), 'table': table.tolist()}


def _own_ms(parts: list[Part], milliseconds: Sequence[float]) -> list[float]:
    """Each part's time less that of the parts directly inside it (a Repeat's block holds its choices,
    a candidate the choices nested in it), whose time their own rows take.

    A module timed twice (a Repeat's block that is a ``LayerChoice``, deployed as its chosen
    candidate) is inside the part of the choice that comes first: the holder.
    """
    subtrees = [{id(module) for module in part.module.modules()} for part in parts]

    def inside(inner: int, outer: int) -> bool:
        if parts[inner].module is parts[outer].module:
            return inner > outer
        return id(parts[inner].module) in subtrees[outer]

    own = []
    for outer, outer_ms in enumerate(milliseconds):
        within = [inner for inner in range(len(parts)) if inner != outer and inside(inner, outer)]
        direct = [inner for inner in within if not any(inside(inner, middle) for middle in within if middle != inner)]
        own.append(outer_ms - sum(milliseconds[inner] for inner in direct))
    return own
