"""The latency predictors' held-out error on this machine's real timings.

Measures the quick start's latency profile (``darts_small`` at its evaluation size, 8x8 digits,
batch 1) as a ``ladarts`` trial does, with a fresh cache each run, and prints the held-out mean
absolute percentage error of the lookup table, of the regression network and of predicting the
mean. The tests check the predictors on synthetic latencies; this is the figure on a real device.

    python benchmarks/latency_predictors.py --output benchmarks/results/latency_predictors_cpu.json
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import torch

from nni_darts_ext.latency.measurement import TimingSettings
from nni_darts_ext.latency.profile import profile_space
from nni_darts_ext.spaces import load_space

from machine import write_results


def main() -> None:
    defaults = TimingSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--samples', type=int, default=40, help='architectures measured (a quarter held out)')
    parser.add_argument('--repeats', type=int, default=defaults.repeats, help='timed rounds per network')
    parser.add_argument('--warmup', type=int, default=defaults.warmup)
    parser.add_argument('--device', default=defaults.device)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0], help='one profile (fresh measurement) per seed')
    parser.add_argument('--output', type=Path)
    arguments = parser.parse_args()

    space = load_space('darts_small', 1, 10, 8)
    deployed = space.build(space.evaluation, True)
    settings = TimingSettings(device=arguments.device, repeats=arguments.repeats, warmup=arguments.warmup)
    runs = []
    for seed in arguments.seeds:
        with tempfile.TemporaryDirectory() as cache:
            profile = profile_space(deployed, (1, 8, 8), settings, arguments.samples, cache, seed=seed)
        runs.append({'seed': seed, 'errors': profile.errors})
    machine = (torch.cuda.get_device_name() if arguments.device.startswith('cuda')
               else platform.processor() or platform.machine())
    print(f'# {machine}, torch {torch.__version__}, {settings.threads} thread(s); quick-start space, '
          f'{arguments.samples} architectures, {arguments.repeats} rounds; held-out error (%)')
    print('| seed | lookup table | network | predicting the mean |')
    print('|---:|---:|---:|---:|')
    for run in runs:
        errors = run['errors']
        print(f'| {run["seed"]} | {errors["lookup"]:.1f} | {errors["network"]:.1f} | {errors["mean"]:.1f} |')
    write_results(arguments, machine, runs=runs)


if __name__ == '__main__':
    main()
