"""Measured latencies on disk, one JSON file per space, input shape and timing settings (batch,
device, threads, warm-up and repeats: samples measured alike).

Measuring is the slow part of LA-DARTS; the file makes every later search of the same space on
the same device free. A file keeps the sampled architectures with their latencies and the
in-place lookup table; it is extended, never rewritten from scratch, when more samples are asked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
from pathlib import Path
from typing import Any, Sequence

import torch
from nni.nas.nn.pytorch import ModelSpace

from ..files import write_atomically
from .encoding import Encoding
from .measurement import TimingSettings, device_name

_logger = logging.getLogger(__name__)

DEFAULT_DIRECTORY = Path('~/.cache/nni-darts-ext/latency')
"""Where the files go unless the strategy's ``latency_cache`` says otherwise."""


def space_key(space: ModelSpace) -> str:
    """The space's class and constructor arguments, and a digest of its modules as built: what fixes
    every network it can build (a class edited since the cache was written builds other networks)."""
    arguments = {'args': list(getattr(space, 'trace_args', ())), 'kwargs': getattr(space, 'trace_kwargs', {})}
    structure = hashlib.sha256(repr(space).encode()).hexdigest()[:16]
    return (f'{type(space).__module__}.{type(space).__qualname__}{json.dumps(arguments, sort_keys=True, default=str)}'
            f' modules {structure}')


class LatencyCache:
    """The file for one space, input shape and timing settings.

    Parameters
    ----------
    directory
        The folder of cache files (``~`` expanded; created on the first write).
    space
        The model space whose networks were timed.
    input_shape
        One image's shape, ``(channels, height, width)``.
    settings
        All of them are part of the key (device, batch, threads, warm-up, repeats).
    """

    def __init__(self, directory: str | os.PathLike, space: ModelSpace, input_shape: Sequence[int],
                 settings: TimingSettings):
        self.key = {'space': space_key(space), 'input_shape': list(input_shape), 'batch': settings.batch,
                    'device': settings.device, 'device_name': device_name(settings.device),
                    'threads': settings.threads, 'warmup': settings.warmup, 'repeats': settings.repeats}
        digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:16]
        self.path = Path(directory).expanduser() / f'{digest}.json'

    def load(self, encoding: Encoding) -> dict[str, Any]:
        """``{'samples': [{'architecture', 'latency_ms'}, ...], 'lookup': {...}}`` (empty if none yet),
        holding only what fits ``encoding``.

        A file that is not the cache's JSON (cut short, emptied, edited), a sample that is not an
        architecture of the space with a positive latency, or a lookup table of another shape is
        left out, with one warning naming the file: the caller measures what is missing again.
        """
        if not self.path.is_file():
            return {'samples': []}
        try:
            content = json.loads(self.path.read_text())
        except (OSError, ValueError) as err:  # unreadable, not UTF-8, not JSON
            _logger.warning('latency cache %s is unreadable (%s): measuring again', self.path, err)
            return {'samples': []}
        if not isinstance(content, dict):
            _logger.warning('latency cache %s holds a JSON %s, not the cache\'s mapping: measuring again', self.path,
                            type(content).__name__)
            return {'samples': []}
        if content.get('key') != self.key:
            return {'samples': []}
        samples = content.get('samples')
        labels = set(encoding.sample(random.Random(0)))
        kept = [sample for sample in samples if _is_sample(sample, encoding, labels)] if isinstance(samples, list) else []
        lookup = content.get('lookup')
        lookup_fits = lookup is None or _is_lookup(lookup, encoding)
        damaged = []
        if not isinstance(samples, list):
            damaged.append('its samples (not a list)')
        elif len(kept) < len(samples):
            damaged.append(f'{len(samples) - len(kept)} of its {len(samples)} samples')
        if not lookup_fits:
            damaged.append("its lookup table (not one of this space's shape)")
        if damaged:
            _logger.warning('latency cache %s is damaged: measuring %s again', self.path, ' and '.join(damaged))
        checked = {**content, 'samples': kept}
        if not lookup_fits:
            del checked['lookup']
        return checked

    def save(self, content: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({**content, 'key': self.key, 'torch': torch.__version__}, indent=1)
        write_atomically(self.path, lambda partial: partial.write_text(text))  # a trial never reads half a file


def _is_sample(sample: object, encoding: Encoding, labels: set[str]) -> bool:
    """Whether a cached ``sample`` is an architecture ``encoding`` encodes (deciding exactly its
    ``labels``), with a positive finite latency."""
    if not isinstance(sample, dict) or not _is_milliseconds(sample.get('latency_ms'), positive=True):
        return False
    architecture = sample.get('architecture')
    if not isinstance(architecture, dict) or set(architecture) != labels:
        return False
    try:
        encoding.one_hot(architecture)
    except (LookupError, TypeError, ValueError, ArithmeticError):  # a missing choice, an unknown candidate
        return False
    return True


def _is_lookup(lookup: object, encoding: Encoding) -> bool:
    """Whether a cached ``lookup`` is a table of ``encoding`` 's shape of finite milliseconds, with a base."""
    if not isinstance(lookup, dict) or not _is_milliseconds(lookup.get('base_ms')):
        return False
    try:
        table = torch.tensor(lookup.get('table'), dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):  # ragged, not numbers
        return False
    return tuple(table.shape) == encoding.shape and bool(torch.isfinite(table).all())


def _is_milliseconds(value: object, positive: bool = False) -> bool:
    """Whether ``value`` is a finite number (above 0 with ``positive``): JSON's, not a boolean."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > 0 or not positive)
