"""An experiment's deployed networks, timed again together after its trials ended.

A trial times its network when it ends (``latency_ms`` in its final result), while other trials
may share the cores (``trialConcurrency``): within one experiment those figures were measured
under different loads. Here each finished trial's network is rebuilt as the trial built it, from
the files it left in its folder (``metrics.json``: its settings; ``arch.json``: the found
architecture), and every network is timed in the same interleaved rounds
(:func:`~nni_darts_ext.latency.measurement.measure`): a burst of load slows one round of every
network alike, so the medians compare. The timing is the trial's own: one image at a time, one CPU
thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from torch import nn

from .data import load_dataset
from .errors import ConfigError
from .latency.measurement import TimingSettings, measure
from .spaces import Size, load_space

TRIAL_FILES = 'environments/*/trials/*/metrics.json'
"""Where NNI 3.0's local training service keeps each trial's folder, under the experiment's."""
RETIMING = TimingSettings(warmup=3, repeats=31)
"""The trial's own timing (cpu, batch 1, 1 thread), with more rounds: they are shared by every network."""


@dataclass(frozen=True)
class DeployedTrial:
    """One finished trial's network as deployed, and what names it in the report."""
    trial_id: str
    variant: str
    seed: int
    network: nn.Module
    input_shape: tuple[int, int, int]


def deployed_trials(experiment_dir: Path) -> list[DeployedTrial]:
    """Every finished trial of the experiment in ``experiment_dir`` with its network rebuilt; one
    :class:`ConfigError` line where the folder holds no finished trial's files."""
    found = []
    for metrics_file in sorted(experiment_dir.glob(TRIAL_FILES)):
        arch_file = metrics_file.with_name('arch.json')
        try:
            written = json.loads(metrics_file.read_text())
            config, final = written['config'], written['final']
            architecture = json.loads(arch_file.read_text())['architecture']
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{metrics_file.parent}: not a finished trial's folder ({err!r}); a trial leaves "
                              'metrics.json (config, final) and arch.json (architecture) there') from None
        network, input_shape = _deployed(config, architecture)
        found.append(DeployedTrial(metrics_file.parent.name, final['variant'], final['seed'], network, input_shape))
    if not found:
        raise ConfigError(f'no finished trial under {experiment_dir} ({TRIAL_FILES}); only the local training '
                          "service keeps the trials' files on this machine")
    return found


def retimed_latencies(experiment_dir: Path) -> dict[tuple[str, int], float]:
    """(variant, seed) -> its deployed network's latency (ms), every network timed in the same rounds."""
    trials = deployed_trials(experiment_dir)
    shapes = {trial.input_shape for trial in trials}
    timed: dict[tuple[str, int], float] = {}
    for shape in shapes:  # one input per dataset and image size; every trial of one experiment has the same
        group = [trial for trial in trials if trial.input_shape == shape]
        for trial, result in zip(group, measure([t.network for t in group], shape, RETIMING)):
            timed[trial.variant, trial.seed] = round(result.total_ms, 4)
    return timed


def _deployed(config: dict[str, Any], architecture: dict[str, Any]) -> tuple[nn.Module, tuple[int, int, int]]:
    """The network of ``architecture`` at the trial's evaluation size, as :func:`~nni_darts_ext.trial.retrain_found`
    builds it, and the image shape the trial timed it on."""
    channels, num_classes, image_size = _data_shape(config['dataset'], config.get('data_dir'), config.get('image_size'))
    space = load_space(config['space'], channels, num_classes, image_size)
    size = Size(config.get('retrain_width') or space.evaluation.width,
                config.get('retrain_cells') or space.evaluation.cells)
    return space.evaluation_model(architecture, size), (space.input_channels, image_size, image_size)


@lru_cache(maxsize=8)
def _data_shape(dataset: str, data_dir: str | None, image_size: int | None) -> tuple[int, int, int]:
    """Channels, classes and image size of the trial's data (two images of each split are kept)."""
    data = load_dataset(dataset, data_dir, train_subset=2, test_subset=2, image_size=image_size)
    return data.channels, data.num_classes, data.image_size
