"""What torch's CPU convolution costs for the depthwise convolutions of DARTS's space: the forward
pass, the gradient to the input and to the kernels, and the forms second-order products take
instead (``supermodules/second_order_convolution.py``): the input's gradient as a forward
convolution with the kernels flipped, the kernels' from 3x3 kernel gradients.

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

from nni_darts_ext.supermodules.second_order_convolution import _input_gradient, _torch_gradients, _weight_gradient

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
    settings = ([1, 1], [padding] * 2, [dilation] * 2, channels)

    def torchs(mask: list[bool]) -> Callable[[], object]:
        return lambda: _torch_gradients(output_gradient, x, weight, settings, mask)

    with torch.no_grad():
        return {
            'forward': best_ms(lambda: F.conv2d(x, weight, None, 1, padding, dilation, channels), calls, repeats),
            'input_gradient': best_ms(torchs([True, False, False]), calls, repeats),
            'input_gradient_as_forward': best_ms(lambda: _input_gradient(output_gradient, x, weight, settings),
                                                 calls, repeats),
            'kernel_gradient': best_ms(torchs([False, True, False]), calls, repeats),
            'kernel_gradient_from_3x3': best_ms(lambda: _weight_gradient(output_gradient, x, weight, settings),
                                                calls, repeats),
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
          '| kernel gradient | from 3x3 ones |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for shape in SHAPES:
        row = {'shape': shape, **costs(*shape, arguments.batch, arguments.calls, arguments.repeats)}
        rows.append(row)
        print('| ' + ' | '.join(map(str, shape)) + ' | ' + ' | '.join(f'{row[key]:.2f}' for key in list(row)[1:]) + ' |')
    write_results(arguments, f'{cpu_name()}, 1 thread, torch {torch.__version__}', rows=rows)


if __name__ == '__main__':
    main()
