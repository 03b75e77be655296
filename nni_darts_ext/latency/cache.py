"""Measured latencies on disk, one JSON file per space, input shape and timing settings (batch,
device, threads, warm-up and repeats: samples measured alike).

Measuring is the slow part of LA-DARTS; the file makes every later search of the same space on
the same device free. A file keeps the sampled architectures with their latencies and the
in-place lookup table; it is extended, never rewritten from scratch, when more samples are asked.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from nni.nas.nn.pytorch import ModelSpace

from ..files import write_atomically
from .measurement import TimingSettings, device_name

DEFAULT_DIRECTORY = Path('~/.cache/nni-darts-ext/latency')
"""Where the files go unless the strategy's ``latency_cache`` says otherwise."""


def space_key(space: ModelSpace) -> str:
    """The space's class and constructor arguments: what fixes every network it can build."""
    arguments = {'args': list(getattr(space, 'trace_args', ())), 'kwargs': getattr(space, 'trace_kwargs', {})}
    return f'{type(space).__module__}.{type(space).__qualname__}{json.dumps(arguments, sort_keys=True, default=str)}'


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

    def load(self) -> dict[str, Any]:
        """``{'samples': [{'architecture', 'latency_ms'}, ...], 'lookup': {...}}`` (empty if none yet)."""
        if not self.path.is_file():
            return {'samples': []}
        content = json.loads(self.path.read_text())
        return content if content.get('key') == self.key else {'samples': []}

    def save(self, content: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({**content, 'key': self.key, 'torch': torch.__version__}, indent=1)
        write_atomically(self.path, lambda partial: partial.write_text(text))  # a trial never reads half a file
