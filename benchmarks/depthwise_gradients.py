"""What torch's CPU convolution costs for the depthwise convolutions of DARTS's space: the forward
pass, the gradient to the input and to the kernels, and the two forms second-order products can
take instead (the input's gradient as a forward convolution with the kernels flipped, the
kernels' as a grouped convolution whose kernel is the output's gradient, in channels-last).

    python benchmarks/depthwise_gradients.py --output benchmarks/results/depthwise_gradients_cpu.json

Best of ``--repeats`` means of ``--calls`` calls each, in ms, one thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from machine import cpu_name, write_results

SHAPES = [  # channels (8 or 16 per edge, a node's edges side by side), size, kernel, dilation
    (40, 16, 3, 1), (40, 16, 5, 1), (40, 16, 3, 2), (40, 16, 5, 2), (64, 8, 5, 1), (64, 8, 5, 2), (96, 4, 5, 2),
]


def best_ms(call: Callable[[], object], calls: int, repeats: int) -> float:
    for _ in range(calls):  # warm: oneDNN builds its kernels on the first calls
        call()
    best = float('inf')
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - started) / calls * 1000)
    return best


def costs(channels: int, size: int, kernel: int, dilation: int, batch: int, calls: int, repeats: int) -> dict:
    padding = dilation * (kernel - 1) // 2
    x, weight = torch.randn(batch, channels, size, size), torch.randn(channels, 1, kernel, kernel)
    output_gradient = torch.randn(batch, channels, size, size)
    settings = ([1, 1], [padding] * 2, [dilation] * 2, False, [0, 0], channels)

    def backward(mask: list[bool]) -> Callable[[], object]:
        return lambda: torch.ops.aten.convolution_backward(output_gradient, x, weight, None, *settings, mask)

    def kernel_gradient_as_convolution() -> torch.Tensor:
        images = x.transpose(0, 1).reshape(1, channels * batch, size, size).contiguous(
            memory_format=torch.channels_last)
        kernels = output_gradient.transpose(0, 1).contiguous(memory_format=torch.channels_last)
        return F.conv2d(images, kernels, None, dilation, padding, 1, channels)

    with torch.no_grad():
        return {
            'forward': best_ms(lambda: F.conv2d(x, weight, None, 1, padding, dilation, channels), calls, repeats),
            'input_gradient': best_ms(backward([True, False, False]), calls, repeats),
            'input_gradient_as_forward': best_ms(
                lambda: F.conv2d(output_gradient, weight.flip(2, 3), None, 1, padding, dilation, channels),
                calls, repeats),
            'kernel_gradient': best_ms(backward([False, True, False]), calls, repeats),
            'kernel_gradient_as_convolution': best_ms(kernel_gradient_as_convolution, calls, repeats),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--calls', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=4)
    parser.add_argument('--output', type=Path, help='write the table and the machine as JSON')
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    costs(*SHAPES[0], arguments.batch, arguments.calls, 1)  # the process warmed: its first shape ran slow
    rows = []
    print('| channels | size | kernel | dilation | forward | input gradient | as a forward convolution '
          '| kernel gradient | as a grouped convolution |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for shape in SHAPES:
        row = {'shape': shape, **costs(*shape, arguments.batch, arguments.calls, arguments.repeats)}
        rows.append(row)
        print('| ' + ' | '.join(map(str, shape)) + ' | ' + ' | '.join(f'{row[key]:.2f}' for key in list(row)[1:]) + ' |')
    write_results(arguments, f'{cpu_name()}, 1 thread, torch {torch.__version__}', rows=rows)


if __name__ == '__main__':
    main()
