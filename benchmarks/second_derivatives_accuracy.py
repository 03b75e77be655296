"""How accurate the second-derivative products are on the real supernet, and what ``eta`` it implies.

On the quick start's supernet (``darts_small`` at search size, digits, ReLU, pooling and batch
norm in training mode), at several points of weight training, this compares the finite-difference
products (``FiniteDifferences(scale)``, step ``scale / |v|``) with the exact ones (double backward):
the Hessian-vector product ``H u`` along the validation gradient ``u = grad_w L_val`` and the
mixed product ``d2L_train/(da dw) . (H u)`` that the amended estimator takes. It also reports
``|H u| / |u|`` of the exact product, from which ``eta = (|u| / |H u|)^2`` (the scale at which
``eta * H`` has the size of ``H^-1`` along ``u``), and the size of the amended implicit term at
that ``eta`` next to the direct gradient ``grad_a L_val``.

    python benchmarks/second_derivatives_accuracy.py --output benchmarks/results/second_derivatives_accuracy_cpu.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from nni_darts_ext import make_strategy, trial
from nni_darts_ext.config import split_parameters
from nni_darts_ext.data import search_split
from nni_darts_ext.second_derivatives import DoubleBackward, FiniteDifferences, dot, gradients, norm

from machine import write_results


def cosine(a: list[Tensor], b: list[Tensor]) -> float:
    return float(dot(a, b) / (norm(a) * norm(b)))


def measure_point(net, weights, alphas, train_batch, val_batch, scales: list[float], weight_decay: float) -> dict:
    """Exact and finite-difference products on one pair of batches."""
    train = lambda: F.cross_entropy(net(train_batch[0]), train_batch[1])  # noqa: E731
    val = lambda: F.cross_entropy(net(val_batch[0]), val_batch[1])  # noqa: E731
    direct = gradients(val(), alphas + weights)
    alpha_gradient, u = direct[:len(alphas)], direct[len(alphas):]
    exact = DoubleBackward().at(train, weights, alphas)
    hu = exact.hessian_product(u)
    curvature = [h + weight_decay * v for h, v in zip(hu, u)]
    mixed = exact.mixed_product(curvature)
    eta = float(norm(u) / norm(curvature)) ** 2
    point = {'hu_over_u': float(norm(curvature) / norm(u)), 'eta': eta,
             'implicit_over_direct': eta * float(norm(mixed) / norm(alpha_gradient)), 'finite_differences': {}}
    for scale in scales:
        fd = FiniteDifferences(scale).at(train, weights, alphas)
        fd_hu = fd.hessian_product(u)
        fd_mixed = fd.mixed_product(curvature)
        point['finite_differences'][str(scale)] = {
            'hu_cosine': cosine(fd_hu, hu), 'hu_norm_ratio': float(norm(fd_hu) / norm(hu)),
            'mixed_cosine': cosine(fd_mixed, mixed), 'mixed_norm_ratio': float(norm(fd_mixed) / norm(mixed))}
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--steps', type=int, nargs='+', default=[0, 60, 120],
                        help='measure after this many weight steps (cumulative)')
    parser.add_argument('--batches', type=int, default=4, help='batch pairs measured at each point')
    parser.add_argument('--scales', type=float, nargs='+', default=[0.01, 0.1, 1.0])
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--output', type=Path)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)

    config, _ = split_parameters({'variant': 'darts', 'batch_size': arguments.batch, 'accelerator': 'cpu'})
    pl.seed_everything(0, verbose=False)
    _, data, space, size, _ = trial.prepare(config, {})
    net = make_strategy('darts').mutate_model(space.search_space(size))
    alphas = [p for name, p in net.named_parameters() if '_arch_' in name]
    weights = [p for name, p in net.named_parameters() if '_arch_' not in name]
    weights_half, architecture_half = search_split(data.train)
    loader = torch.utils.data.DataLoader(weights_half, batch_size=arguments.batch, shuffle=True, drop_last=True)
    val_loader = torch.utils.data.DataLoader(architecture_half, batch_size=arguments.batch, shuffle=True,
                                             drop_last=True)
    optimizer = torch.optim.SGD(weights, lr=config.learning_rate, momentum=config.momentum,
                                weight_decay=config.weight_decay)

    def batches(source):
        while True:
            yield from source

    train_batches, val_batches = batches(loader), batches(val_loader)
    points, done = [], 0
    for steps in sorted(arguments.steps):
        for _ in range(steps - done):
            images, labels = next(train_batches)
            optimizer.zero_grad()
            F.cross_entropy(net(images), labels).backward()
            optimizer.step()
        done = steps
        measured = [measure_point(net, weights, alphas, next(train_batches), next(val_batches), arguments.scales,
                                  config.weight_decay) for _ in range(arguments.batches)]
        points.append({'weight_steps': steps, 'batches': measured})

    machine = f'{platform.processor() or platform.machine()}, {arguments.threads} threads, torch {torch.__version__}'
    print(f'# {machine}; quick-start supernet (darts_small, search size), digits, batch {arguments.batch}; '
          f'medians over {arguments.batches} batch pairs')
    print('| weight steps | scale | H u cosine | H u norm ratio | mixed cosine | mixed norm ratio |')
    print('|---:|---:|---:|---:|---:|---:|')
    for point in points:
        for scale in map(str, arguments.scales):
            rows = [b['finite_differences'][scale] for b in point['batches']]
            cells = [statistics.median(r[key] for r in rows)
                     for key in ('hu_cosine', 'hu_norm_ratio', 'mixed_cosine', 'mixed_norm_ratio')]
            print(f'| {point["weight_steps"]} | {scale} | ' + ' | '.join(f'{c:.3f}' for c in cells) + ' |')
    print('| weight steps | abs(H u) / abs(u) | eta = (abs(u) / abs(H u))^2 | implicit / direct at that eta |')
    print('|---:|---:|---:|---:|')
    for point in points:
        cells = [statistics.median(b[key] for b in point['batches'])
                 for key in ('hu_over_u', 'eta', 'implicit_over_direct')]
        print(f'| {point["weight_steps"]} | {cells[0]:.2f} | {cells[1]:.3g} | {cells[2]:.2f} |')
    write_results(arguments, machine, points=points)


if __name__ == '__main__':
    main()
