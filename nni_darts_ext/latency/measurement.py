"""Timing real networks on the device the user names: warm-up, synchronized timing, median.

Several networks are timed in interleaved rounds (one forward of each per round) rather than
one after another, so that a burst of load from another process slows one round of every
network instead of every round of one: on a shared machine the medians stay comparable. The
same rounds can time chosen modules inside a network through forward hooks, which gives each
operation's latency in place (on its real input, at its position).
"""

from __future__ import annotations

import platform
import re
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from ..errors import ConfigError, check_number

_DEVICE = re.compile(r'^(cpu|cuda(:\d+)?)$')


def resolve_device(name: str) -> torch.device:
    """``'cpu'``, ``'cuda'`` or ``'cuda:N'`` as a device that exists here.

    Raises
    ------
    ConfigError
        For another name, or a CUDA device this machine does not have.
    """
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise ConfigError(f"unknown latency device {name!r}; accepted: cpu, cuda, cuda:N")
    device = torch.device(name)
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ConfigError(f'latency device {name!r} asked for, but CUDA is not available here; accepted: cpu')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f'latency device {name!r} does not exist; this machine has cuda:0 to '
                              f'cuda:{torch.cuda.device_count() - 1}')
    return device


def device_name(device: str) -> str:
    """The hardware behind a device name (a cache measured on one GPU model is not another's)."""
    resolved = resolve_device(device)
    if resolved.type == 'cuda':
        return torch.cuda.get_device_name(resolved)
    return platform.processor() or platform.machine()


def describe_device(device: str) -> str:
    """The device and its hardware, as logs and summaries name them: ``cpu (x86_64)``, ``cuda:0 (NVIDIA H200)``."""
    resolved = resolve_device(device)
    if resolved.type == 'cuda' and resolved.index is None:
        resolved = torch.device('cuda', torch.cuda.current_device())
    return f'{resolved} ({device_name(device)})'


@dataclass(frozen=True)
class TimingSettings:
    """How latencies are measured.

    Attributes
    ----------
    device
        ``cpu`` or a CUDA device (``cuda``, ``cuda:1``).
    batch
        Images per forward pass.
    warmup
        Untimed rounds first (allocator, caches, cuDNN's algorithm choice).
    repeats
        Timed rounds; a network's latency is the median.
    threads
        Torch's CPU threads while timing (fixed, so the figure does not depend on the caller's).
    """
    device: str = 'cpu'
    batch: int = 1
    warmup: int = 3
    repeats: int = 15
    threads: int = 1

    def __post_init__(self) -> None:
        resolve_device(self.device)
        for name in ('batch', 'repeats', 'threads'):
            check_number(f'latency_{name}', getattr(self, name), integer=True, strict=True)
        check_number('latency_warmup', self.warmup, integer=True)


@dataclass
class Timed:
    """One network's median latency and the median latency of each watched module (ms)."""
    total_ms: float
    modules_ms: list[float]


def measure(networks: Sequence[nn.Module], input_shape: Sequence[int], settings: TimingSettings,
            watched: Sequence[Sequence[nn.Module]] = ()) -> list[Timed]:
    """Time each network's forward pass on a random batch of ``input_shape`` (without the batch).

    ``watched[i]`` lists modules inside ``networks[i]`` to time in place: each round runs such a
    network once more with hooks around those modules (the plain forward is timed without hooks).
    """
    device = resolve_device(settings.device)
    networks = [network.to(device).eval() for network in networks]
    images = torch.randn(settings.batch, *input_shape, device=device)
    totals: list[list[float]] = [[] for _ in networks]
    clocks = [_ModuleClock(watched[i] if i < len(watched) else [], device) for i in range(len(networks))]
    with _threads(settings.threads), torch.no_grad():
        for round_index in range(settings.warmup + settings.repeats):
            timed = round_index >= settings.warmup
            for network, seconds in zip(networks, totals):
                elapsed = _timed_forward(network, images, device)
                if timed:
                    seconds.append(elapsed)
            for network, clock in zip(networks, clocks):
                if clock.modules:
                    with clock.hooked(timed):
                        network(images)
    return [Timed(1e3 * statistics.median(seconds), clock.medians_ms()) for seconds, clock in zip(totals, clocks)]


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed_forward(network: nn.Module, images: torch.Tensor, device: torch.device) -> float:
    _synchronize(device)
    started = time.perf_counter()
    network(images)
    _synchronize(device)
    return time.perf_counter() - started


@contextmanager
def _threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _ModuleClock:
    """Times each call of the watched modules through forward hooks (synchronized on CUDA)."""

    def __init__(self, modules: Sequence[nn.Module], device: torch.device):
        self.modules = list(modules)
        self.device = device
        self.seconds: list[list[float]] = [[] for _ in self.modules]
        self.started = [0.0] * len(self.modules)  # one clock per module: a watched module may hold another

    @contextmanager
    def hooked(self, recording: bool) -> Iterator[None]:
        """Hooks on the modules for one forward pass; their times kept if ``recording``."""
        handles = []
        for index, module in enumerate(self.modules):
            handles.append(module.register_forward_pre_hook(self._starter(index)))
            handles.append(module.register_forward_hook(self._stopper(index, recording)))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _starter(self, index: int):
        def start(module: nn.Module, inputs: object) -> None:
            _synchronize(self.device)
            self.started[index] = time.perf_counter()
        return start

    def _stopper(self, index: int, recording: bool):
        def stop(module: nn.Module, inputs: object, output: object) -> None:
            _synchronize(self.device)
            if recording:
                self.seconds[index].append(time.perf_counter() - self.started[index])
        return stop

    def medians_ms(self) -> list[float]:
        return [1e3 * statistics.median(seconds) for seconds in self.seconds]
