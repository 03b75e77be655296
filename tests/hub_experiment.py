"""The Python route for the strategy tests: ``NasExperiment`` on NNI's hub DARTS space, on digits."""

from __future__ import annotations

from typing import Any

from nni.nas.evaluator.pytorch import Classification, DataLoader
from nni.nas.experiment import NasExperiment
from nni.nas.strategy import Strategy

from nni_darts_ext.data import load_dataset, search_split
from nni_darts_ext.spaces import Size, load_space

from .nnictl_helpers import free_port

HUB_SIZE = Size(width=8, cells=3)


def hub_darts_labels() -> set[str]:
    """The labels of an architecture of NNI's DARTS space at :data:`HUB_SIZE`."""
    return set(load_space('nni:DARTS', 3, 10, 8).search_space(HUB_SIZE).simplify())


def search_hub_darts(strategy: Strategy) -> tuple[dict[str, Any], NasExperiment]:
    """Run ``strategy`` in a ``NasExperiment`` on NNI's DARTS (8 channels, 3 cells) for one epoch of
    128 digits; the exported architecture and the stopped experiment."""
    data = load_dataset('digits', train_subset=128).with_channels(3)
    weights_half, architecture_half = search_split(data.train)
    space = load_space('nni:DARTS', 3, 10, 8).search_space(HUB_SIZE)
    evaluator = Classification(train_dataloaders=DataLoader(weights_half, batch_size=32, shuffle=True),
                               val_dataloaders=DataLoader(architecture_half, batch_size=32),
                               num_classes=10, max_epochs=1, accelerator='cpu', enable_progress_bar=False,
                               logger=False, enable_checkpointing=False)
    experiment = NasExperiment(space, evaluator, strategy)
    try:
        experiment.run(port=free_port())
        architecture = experiment.export_top_models(formatter='dict')[0]
    finally:
        experiment.stop()  # now, not at exit, when pytest has closed the streams NNI logs to
    return architecture, experiment
