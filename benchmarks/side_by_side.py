"""Measuring supernets side by side: what a training step costs, the same flags, a ratio table.

Shared by the benchmarks that compare a variant with NNI's DARTS in one run. A step is one
forward and backward pass and an SGD update on one batch (a DARTS search step does this twice:
once for the architecture, once for the weights).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nni_darts_ext.spaces import Size, load_space


def autocast(device: torch.device, precision: str) -> Any:
    """The forward pass's context: nothing in float32, autocast to bfloat16 otherwise."""
    return nullcontext() if precision == 'float32' else torch.autocast(device.type, dtype=torch.bfloat16)


def step_cost(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int,
              precision: str = 'float32') -> dict[str, float]:
    """``step_s`` (mean) and ``median_step_s`` over ``steps`` timed steps after two warm-up steps,
    ``activation_mb`` (bytes autograd saves for the backward pass, a tensor counted once per
    operation that saves it), and on CUDA ``peak_mb``; the forward passes in ``precision``."""
    device = images.device
    optimizer = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)

    def synchronize() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize()

    def step() -> float:
        synchronize()
        started = time.perf_counter()
        optimizer.zero_grad()
        with autocast(device, precision):
            loss = F.cross_entropy(net(images), labels)
        loss.backward()
        optimizer.step()
        synchronize()
        return time.perf_counter() - started

    for _ in range(2):
        step()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    seconds = [step() for _ in range(steps)]
    cost = {'step_s': statistics.mean(seconds), 'median_step_s': statistics.median(seconds)}
    if device.type == 'cuda':
        cost['peak_mb'] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    # The pack hook keeps nothing (this graph is never run backward): returning the tensor itself
    # would tie outputs to their own grad_fn in reference cycles and leak the whole graph into
    # later measurements.
    saved: list[int] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel() * t.element_size()),
                                                  lambda _: None), autocast(device, precision):
        F.cross_entropy(net(images), labels)
    cost['activation_mb'] = sum(saved) / 2 ** 20
    return cost


def architecture_gradient_cosine(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, precision: str) -> float:
    """The cosine between the architecture parameters' gradient with the forward pass in
    ``precision`` and in float32, on one batch (batch norms in training mode, as a search step)."""
    alphas = [p for name, p in net.named_parameters() if '_arch_' in name]

    def gradient(precision: str) -> torch.Tensor:
        with autocast(images.device, precision):
            loss = F.cross_entropy(net(images), labels)
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, alphas)]).float()
    return float(F.cosine_similarity(gradient(precision), gradient('float32'), dim=0))


def supernet_cost(strategy: Any, space_name: str, arguments: argparse.Namespace, batch: int) -> dict[str, Any]:
    """``strategy``'s supernet of ``space_name`` at the flags' size and precision, in channels-last
    with ``--channels-last``: :func:`step_cost` on random images, its operation weights and
    architecture parameters, and (in bfloat16) :func:`architecture_gradient_cosine`."""
    device = torch.device(arguments.device)
    space = load_space(space_name, 3, 10, arguments.image_size).search_space(Size(arguments.width, arguments.cells))
    memory_format = torch.channels_last if arguments.channels_last else torch.contiguous_format
    net = strategy.mutate_model(space).to(device, memory_format=memory_format)
    images = torch.randn(batch, 3, arguments.image_size, arguments.image_size,
                         device=device).contiguous(memory_format=memory_format)
    labels = torch.randint(0, 10, (batch,), device=device)
    result = {
        'space': space_name,
        'batch': batch,
        **step_cost(net, images, labels, arguments.steps, arguments.precision),
        'operation_weights': sum(p.numel() for n, p in net.named_parameters() if '.ops.' in n),
        'arch_parameters': sum(p.numel() for n, p in net.named_parameters() if '_arch_alpha' in n),
    }
    if arguments.precision != 'float32':
        result['arch_gradient_cosine'] = architecture_gradient_cosine(net, images, labels, arguments.precision)
    del net
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return result


def command_line(description: str) -> argparse.ArgumentParser:
    """The flags every side-by-side benchmark has: device, supernet size, batch, steps, threads, output."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--width', type=int, default=8)
    parser.add_argument('--cells', type=int, default=5)
    parser.add_argument('--image-size', type=int, default=16)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--threads', type=int, help="torch's CPU threads (default: torch's own choice)")
    parser.add_argument('--precision', choices=('float32', 'bfloat16'), default='float32',
                        help='the forward pass in float32, or autocast to bfloat16')
    parser.add_argument('--channels-last', action='store_true', help='the supernet and the images in channels-last')
    parser.add_argument('--output', type=Path, help='write the runs and the machine as JSON')
    return parser


def report(runs: dict[str, dict[str, Any]], base: str, keys: list[str], arguments: argparse.Namespace,
           setting: str = '', extra: dict[str, Any] | None = None) -> None:
    """Print a table of ``keys`` and their ratios to run ``base``; write ``--output`` (with ``extra``)."""
    device = torch.cuda.get_device_name() if arguments.device.startswith('cuda') else platform.processor() or 'cpu'
    print(f'# {device}, torch {torch.__version__}, {torch.get_num_threads()} threads{setting}; supernet: '
          f'{arguments.cells} cells x {arguments.width} channels, {arguments.image_size}x{arguments.image_size} images')
    keys = [k for k in keys if k in runs[base]]
    print('| run | batch | ' + ' | '.join(keys) + ' | ' + ' | '.join(f'{k} ratio' for k in keys) + ' |')
    print('|---' * (2 + 2 * len(keys)) + '|')
    for name, run in runs.items():
        values = ' | '.join(f'{run[k]:.4g}' for k in keys)
        ratios = ' | '.join(f'{run[k] / runs[base][k]:.3f}' for k in keys)
        print(f'| {name} | {run["batch"]} | {values} | {ratios} |')
    if arguments.output:
        arguments.output.write_text(json.dumps({'device': device, 'threads': torch.get_num_threads(),
                                                'arguments': vars(arguments) | {'output': None}, 'runs': runs,
                                                **(extra or {})},
                                               indent=2))
