"""LA-DARTS's latency predictors against every NAS-Bench-201 cell's measured latency, by the profile's size.

The profile is measured as a ``ladarts`` trial whose cell is deployed as NB201's evaluation network
measures it (:func:`nni_darts_ext.latency.profile.profile_space` on the hub ``NasBench201`` at 16
channels and 5 cells per stage, one 3x32x32 image, the trial's timing settings), at each of
``--sizes``. They share one cache, so a larger profile extends a smaller one; by default the cache
LA-DARTS's trials read, so that searches deployed the same way reuse this measurement. Each predictor
fitted on a profile then predicts every cell timed by ``benchmarks/nb201_latency.py``, each read as
the median of the timed cells with its operation counts: the mean absolute percentage error and the
rank correlation over all of them say how well a profile of that size knows the space, beside the
profile's own held-out error.

    python benchmarks/latency_profile_size.py --sizes 10 20 40 80 160 --output benchmarks/results/latency_profile_size_cpu.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from scipy.stats import spearmanr

from nni_darts_ext import trial
from nni_darts_ext.latency.cache import DEFAULT_DIRECTORY
from nni_darts_ext.latency.measurement import TimingSettings
from nni_darts_ext.latency.predictor import mean_absolute_percentage_error
from nni_darts_ext.latency.profile import PREDICTORS, profile_space
from nni_darts_ext.nb201 import NB201_SPACE, nni_architecture
from nni_darts_ext.spaces import Size
from nni_darts_ext.spaces.hub import hub_space
from nni_darts_ext.strategies.ladarts import PROFILE_REPEATS

from machine import cpu_name, write_results
from nb201_latency import by_operation_counts, load_latencies

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', type=int, default=[10, 20, 40, 80, 160],
                        help='architectures per profile (a quarter held out for its own error)')
    parser.add_argument('--latency', default=str(ROOT / 'benchmarks' / 'results' / 'nb201_latency_cpu.json'),
                        help="every cell's latency, from benchmarks/nb201_latency.py")
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=PROFILE_REPEATS)
    parser.add_argument('--cache', default=str(DEFAULT_DIRECTORY), help="the profile's cache (LA-DARTS's)")
    parser.add_argument('--output', type=Path)
    arguments = parser.parse_args()
    trial.configure_output()
    network, timed = load_latencies(Path(arguments.latency))
    latency = by_operation_counts(timed, timed)  # each timed cell's noise averaged over its peers
    space = hub_space(NB201_SPACE, 10, 32).build(Size(network['width'], network['cells']), True)
    input_shape = tuple(network['input'][1:])
    cells = sorted(latency)
    measured = torch.tensor([latency[cell] for cell in cells])
    settings = TimingSettings(warmup=arguments.warmup, repeats=arguments.repeats, threads=1)
    rows = []
    for size in sorted(arguments.sizes):
        profile = profile_space(space, input_shape, settings, size, Path(arguments.cache).expanduser())
        encodings = torch.stack([profile.encoding.one_hot(nni_architecture(cell)) for cell in cells])
        row = {'size': size, 'held_out_error_pct': profile.errors}
        with torch.no_grad():
            for name in PREDICTORS:
                predicted = profile.predict(name, encodings)
                row[name] = {'error_pct': round(float(mean_absolute_percentage_error(predicted, measured)), 2),
                             'spearman': round(float(spearmanr(predicted, measured).statistic), 4)}
        rows.append(row)
    print(f'# {cpu_name()}, torch {torch.__version__}, 1 thread; NB201 at width {network["width"]}, '
          f'{network["cells"]} cells per stage, input {list(input_shape)}; predicted against {len(cells)} timed cells')
    print('| profile size | lookup error (%) | lookup Spearman | network error (%) | network Spearman '
          '| held-out error: lookup / network / mean (%) |')
    print('|---:|---:|---:|---:|---:|---|')
    for row in rows:
        own = row['held_out_error_pct']
        print(f"| {row['size']} | {row['lookup']['error_pct']:.1f} | {row['lookup']['spearman']:.3f} | "
              f"{row['network']['error_pct']:.1f} | {row['network']['spearman']:.3f} | "
              f"{own['lookup']:.1f} / {own['network']:.1f} / {own['mean']:.1f} |")
    write_results(arguments, f'{cpu_name()}, 1 thread, torch {torch.__version__}', cells=len(cells), rows=rows)


if __name__ == '__main__':
    main()
