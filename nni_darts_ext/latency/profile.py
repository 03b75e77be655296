"""A space's latency profile on one device: measured samples, both predictors, their held-out error.

Random architectures of the space are built as the deployed networks and timed
(:mod:`.measurement`); probe architectures time every operation on every edge in place for the
lookup table. The table is calibrated and the regression network trained on the first samples;
both are scored on the rest (mean absolute percentage error), beside the error of predicting the
training mean, which says how much the predictors know. Everything measured goes through the cache.
"""

from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from nni.nas.nn.pytorch import Cell, ModelSpace
from nni.nas.space import model_context

from ..errors import ConfigError, check_number
from .cache import LatencyCache
from .encoding import CellEncoding, Edge
from .measurement import TimingSettings, measure
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
    encoding: CellEncoding
    lookup: LookupTable
    network: LatencyNetwork
    errors: dict[str, float]
    samples: int

    def predictor(self, name: str) -> nn.Module:
        return {'lookup': self.lookup, 'network': self.network}[name]


def profile_space(space: ModelSpace, input_shape: Sequence[int], settings: TimingSettings, samples: int,
                  cache_directory: str | os.PathLike, held_out: float = 0.25, seed: int = 0) -> LatencyProfile:
    """Measure (or load) ``samples`` random architectures and the lookup table; fit and score the predictors."""
    check_number('latency_samples', samples, integer=True, minimum=4)  # some train, some are held out
    encoding = CellEncoding.of(space)
    cache = LatencyCache(cache_directory, space, input_shape, settings)
    content = cache.load()
    generator = random.Random(seed)
    architectures = [encoding.sample(generator) for _ in range(samples)]
    missing = architectures[len(content['samples']):]
    if missing or 'lookup' not in content:
        _logger.info('measuring %d architectures on %s (cache: %s)', len(missing), settings.device, cache.path)
        content = _measured(space, encoding, input_shape, settings, missing, content)
        cache.save(content)
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
    _logger.info('latency predictors, held-out error over %d architectures: lookup %.1f %%, network %.1f %% '
                 '(predicting the mean: %.1f %%)', samples - training, errors['lookup'], errors['network'],
                 errors['mean'])
    if min(errors['lookup'], errors['network']) >= errors['mean']:
        # seen when other processes shared the CPU while measuring: the latencies were mostly noise
        _logger.warning('the latency predictors do no better than predicting the mean: the measurements look like '
                        'noise (did other processes share the device?); delete %s to measure again', cache.path)
    return LatencyProfile(encoding, lookup, network, errors, samples)


def _measured(space: ModelSpace, encoding: CellEncoding, input_shape: Sequence[int], settings: TimingSettings,
              architectures: list[dict[str, Any]], content: dict[str, Any]) -> dict[str, Any]:
    """``content`` with ``architectures`` measured and appended, and the lookup table if it had none.

    The samples and the probes are timed in the same interleaved rounds.
    """
    probes = [] if 'lookup' in content else _probes(encoding)
    networks = [deployed(space, architecture) for architecture in architectures + probes]
    watched = [[] for _ in architectures] + [[module for module, _, _ in _operations(network, encoding, probe)]
                                             for network, probe in zip(networks[len(architectures):], probes)]
    timed = measure(networks, input_shape, settings, watched)
    samples = content['samples'] + [{'architecture': architecture, 'latency_ms': result.total_ms}
                                    for architecture, result in zip(architectures, timed)]
    updated = {**content, 'samples': samples}
    if probes:
        updated['lookup'] = _lookup_table(encoding, networks[len(architectures):], probes, timed[len(architectures):])
    return updated


def _probes(encoding: CellEncoding) -> list[dict[str, Any]]:
    """Architectures that together put every operation on every edge: for each operation, node ``n``
    takes inputs ``(slots * k + s) mod n`` in probe ``k``."""
    widest = max(edge.node for edge in encoding.edges)
    probes = []
    for operation in encoding.operations:
        for k in range(math.ceil(widest / encoding.slots)):
            probe: dict[str, Any] = {}
            for cell, node in sorted({(edge.cell, edge.node) for edge in encoding.edges}):
                for slot in range(encoding.slots):
                    probe[f'{cell}/op_{node}_{slot}'] = operation
                    probe[f'{cell}/input_{node}_{slot}'] = [(encoding.slots * k + slot) % node]
            probes.append(probe)
    return probes


def _operations(network: nn.Module, encoding: CellEncoding,
                architecture: dict[str, Any]) -> list[tuple[nn.Module, Edge, str]]:
    """Every chosen operation module in the network's cells, with its edge and operation name."""
    found = []
    for cell in network.modules():
        if not isinstance(cell, Cell):
            continue
        for node_index, node_operations in enumerate(cell.ops):
            node = node_index + cell.num_predecessors
            for slot, module in enumerate(node_operations):
                source = architecture[f'{cell.label}/input_{node}_{slot}'][0]
                found.append((module, Edge(cell.label, node, source), architecture[f'{cell.label}/op_{node}_{slot}']))
    if not found:
        raise ConfigError('the deployed network has no NNI Cell to time operations in')
    return found


def _lookup_table(encoding: CellEncoding, networks: list[nn.Module], probes: list[dict[str, Any]],
                  timed: list[Any]) -> dict[str, Any]:
    """Each (edge, operation)'s in-place latency, summed over the cells sharing the edge and averaged
    over the probes that hold it; the rest of the network's latency, the median over probes."""
    rows = {edge: index for index, edge in enumerate(encoding.edges)}
    total = torch.zeros(encoding.shape)
    count = torch.zeros(encoding.shape)
    bases = []
    for network, probe, result in zip(networks, probes, timed):
        in_probe = torch.zeros(encoding.shape)
        for (_, edge, operation), milliseconds in zip(_operations(network, encoding, probe), result.modules_ms):
            in_probe[rows[edge], encoding.operations.index(operation)] += milliseconds
        total += in_probe
        count += in_probe > 0
        bases.append(result.total_ms - sum(result.modules_ms))
    table: Tensor = total / count.clamp(min=1)
    return {'base_ms': float(torch.tensor(bases).median()), 'table': table.tolist()}
