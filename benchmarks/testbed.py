"""The search-quality testbed as the benchmark scripts run it: an experiment's trial settings, one search."""

from __future__ import annotations

import itertools
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml

from nni_darts_ext import architecture, trial
from nni_darts_ext.board import TENSORBOARD_DIR, TrialBoard
from nni_darts_ext.collapse import CollapseMonitor
from nni_darts_ext.config import check_variant_settings, command_line, parse_options, split_parameters

ROOT = Path(__file__).resolve().parent.parent
SEARCH_QUALITY = ROOT / 'experiments' / 'search_quality.yml'
"""The testbed's experiment: NAS-Bench-201's cell on Fashion-MNIST at 16x16."""


def trial_parameters(experiment: Path, variant: str) -> dict[str, Any]:
    """The trial parameters ``variant`` runs with in ``experiment``: its ``trialCommand``'s flags and
    options, then that variant's ``--variant-settings``."""
    command = shlex.split(yaml.safe_load(Path(experiment).read_text())['trialCommand'])
    flags = vars(command_line().parse_args(command[command.index('nni_darts_ext.trial') + 1:]))
    options = parse_options(flags.pop('option'))
    settings = check_variant_settings(flags.pop('variant_settings'), flags)
    return {**flags, **options, **settings.get(variant, {})}


def search_curve(variant: str, seed: int, parameters: dict[str, Any]) -> dict[str, Any]:
    """One search on the CPU; its per-epoch records, architecture learning rate, the architecture the trial
    would take (:func:`nni_darts_ext.trial.connected_first`), the one it exported, and what the
    strategy's summary adds to a trial's final result (LA-DARTS's predicted latency, ...)."""
    config, options = split_parameters({**parameters, 'variant': variant, 'seed': seed, 'accelerator': 'cpu'})
    pl.seed_everything(seed, workers=True, verbose=False)
    strategy, data, space, search_size, evaluation_size = trial.prepare(config, options)
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    # the search's per-epoch checkpoints are not kept: each search gets a scratch folder
    with tempfile.TemporaryDirectory() as scratch:
        candidates = trial.search(strategy, space, search_size, data, config, records,
                                  CollapseMonitor(config.eigenvalue_batches, config.early_stop), Path(scratch),
                                  trial.search_settings(config, options), TrialBoard(Path(scratch) / TENSORBOARD_DIR))
        unconstrained = next(candidates)
        found = trial.connected_first(itertools.chain([unconstrained], candidates), space, evaluation_size, data)
    return {'variant': variant, 'seed': seed, 'search_s': round(time.perf_counter() - started, 1),
            'arc_learning_rate': strategy.arc_learning_rate, 'epochs': records, 'architecture': found,
            'arch': architecture.describe(found), 'unconstrained_arch': architecture.describe(unconstrained),
            'summary': strategy.search_summary(found)}
