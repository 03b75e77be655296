"""PC-DARTS against NNI's own DARTS on the same supernet, in the same run: step time,
activation memory, peak memory (GPU), operation weights; PC-DARTS's figures as ratios of DARTS's.

A step is one forward and backward pass and an SGD update on one batch (a DARTS search step
does this twice: once for the architecture, once for the weights). PC-DARTS runs at the
same batch and at ``--pc-batch-factor`` times it (the paper raises 64 to 256).

    python benchmarks/pcdarts_vs_darts.py                      # CPU, a small supernet
    python benchmarks/pcdarts_vs_darts.py --device cuda --width 16 --cells 8 --image-size 32 --batch 64
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nni_darts_ext import PCDARTS  # first: it quiets NNI's import-time warnings about new torch classes
from nni_darts_ext.spaces import Size, load_space
from nni.nas.strategy import DARTS


def measure(strategy, arguments, batch: int) -> dict:
    device = torch.device(arguments.device)
    space = load_space('darts', 3, 10, arguments.image_size).search_space(Size(arguments.width, arguments.cells))
    net = strategy.mutate_model(space).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9)
    images = torch.randn(batch, 3, arguments.image_size, arguments.image_size, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        optimizer.step()

    def synchronize():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    for _ in range(2):
        step()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    synchronize()
    started = time.perf_counter()
    for _ in range(arguments.steps):
        step()
    synchronize()
    seconds = (time.perf_counter() - started) / arguments.steps
    peak_mb = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == 'cuda' else None
    # Bytes autograd saves for the backward pass. The pack hook keeps nothing (this graph is
    # never run backward): returning the tensor itself would tie outputs to their own grad_fn
    # in reference cycles and leak the whole graph into later measurements.
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel() * t.element_size()),
                                                  lambda _: None):
        F.cross_entropy(net(images), labels)
    result = {
        'batch': batch,
        'step_s': seconds,
        'activation_mb': sum(saved) / 2 ** 20,
        'operation_weights': sum(p.numel() for n, p in net.named_parameters() if '.ops.' in n),
    }
    if peak_mb is not None:
        result['peak_mb'] = peak_mb
    del net, optimizer
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--width', type=int, default=8)
    parser.add_argument('--cells', type=int, default=5)
    parser.add_argument('--image-size', type=int, default=16)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--k', type=int, default=4)
    parser.add_argument('--pc-batch-factor', type=int, default=4)
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--no-cudnn', action='store_true',
                        help="PyTorch's own convolutions instead of cuDNN's (whose workspaces count in the peak)")
    parser.add_argument('--output', type=Path)
    arguments = parser.parse_args()
    torch.manual_seed(0)
    torch.backends.cudnn.enabled = not arguments.no_cudnn

    runs = {
        'darts': measure(DARTS(), arguments, arguments.batch),
        f'pcdarts k={arguments.k}': measure(PCDARTS(k=arguments.k), arguments, arguments.batch),
        f'pcdarts k={arguments.k}, batch x{arguments.pc_batch_factor}':
            measure(PCDARTS(k=arguments.k), arguments, arguments.batch * arguments.pc_batch_factor),
    }
    device_name = torch.cuda.get_device_name() if arguments.device.startswith('cuda') else platform.processor() or 'cpu'
    print(f'# {device_name}, torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'cuDNN {"off" if arguments.no_cudnn else "on"}; supernet: '
          f'{arguments.cells} cells x {arguments.width} channels, {arguments.image_size}x{arguments.image_size} images')
    base = runs['darts']
    keys = [k for k in ('step_s', 'activation_mb', 'peak_mb', 'operation_weights') if k in base]
    print('| run | batch | ' + ' | '.join(keys) + ' | ' + ' | '.join(f'{k} ratio' for k in keys) + ' |')
    print('|---' * (2 + 2 * len(keys)) + '|')
    for name, run in runs.items():
        values = ' | '.join(f'{run[k]:.4g}' for k in keys)
        ratios = ' | '.join(f'{run[k] / base[k]:.3f}' for k in keys)
        print(f'| {name} | {run["batch"]} | {values} | {ratios} |')
    if arguments.output:
        arguments.output.write_text(json.dumps({'device': device_name, 'arguments': vars(arguments) | {'output': None},
                                                'runs': runs}, indent=2))


if __name__ == '__main__':
    main()
