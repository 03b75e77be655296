from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from nni.nas.evaluator.pytorch import LightningModule
from nni.nas.strategy import DARTS

from nni_darts_ext import VARIANTS, ConfigError, RandomArchitecture, DifferentiableSearch, make_strategy
from nni_darts_ext.spaces import load_space


def test_registry_has_the_baselines():
    assert {'darts', 'random'} <= set(VARIANTS)
    assert isinstance(make_strategy('darts'), DARTS)
    assert isinstance(make_strategy('random'), RandomArchitecture)


def test_overrides_reach_the_strategy_and_defaults_are_the_papers():
    strategy = make_strategy('darts', arc_learning_rate=6e-4, warmup_epochs=2)
    assert (strategy.arc_learning_rate, strategy.warmup_epochs, strategy.gradient_clip_val) == (6e-4, 2, 5.0)
    assert make_strategy('darts').arc_learning_rate == 3e-4


@pytest.mark.parametrize('variant', ['darts', 'pcdarts+stabilized'])
def test_the_architecture_optimizer_is_nnis_adam_at_the_searchs_weight_decay(variant):
    for options, decay in (({}, 1e-3), ({'arc_weight_decay': 0.0}, 0.0)):
        strategy = make_strategy(variant, arc_learning_rate=0.1, **options)
        module = strategy.configure_oneshot_module(_Recorder())
        module.training_module.model = torch.nn.Linear(1, 1)
        module.arch_parameters = lambda: [torch.nn.Parameter(torch.zeros(3))]
        optimizer = module.configure_architecture_optimizers()
        assert isinstance(optimizer, torch.optim.Adam)
        assert [(g['lr'], g['betas'], g['weight_decay']) for g in optimizer.param_groups] == [(0.1, (0.5, 0.999), decay)]


def test_unknown_variant_and_option_name_the_accepted():
    with pytest.raises(ConfigError, match="unknown variant 'dartz'; accepted: darts, darts2, gdas, ladarts, nni-darts, pcdarts, pdarts, random, scalable, stabilized"):
        make_strategy('dartz')
    with pytest.raises(ConfigError, match="variant 'darts' has no option 'k'; its options: arc_learning_rate"):
        make_strategy('darts', k=4)


def test_darts_validates_every_epoch():
    strategy = DifferentiableSearch()
    validation = object()
    assert strategy.val_dataloader(lambda: 'train', lambda: validation) is validation
    module = strategy.configure_oneshot_module(_Recorder())
    assert module.validation_step('batch', 3) == ('validated', 'batch', 3)


class _Recorder(LightningModule):
    def validation_step(self, batch, batch_idx):
        return ('validated', batch, batch_idx)


def test_random_architecture_is_seeded_and_covers_the_space():
    model_space = load_space('darts_small', 1, 10, 8).search_space()
    first = RandomArchitecture(seed=0).sample(model_space)
    assert first == RandomArchitecture(seed=0).sample(model_space)
    assert first != RandomArchitecture(seed=1).sample(model_space)
    assert set(first) == set(model_space.simplify())
    operations = {op for seed in range(20) for label, op in RandomArchitecture(seed=seed).sample(model_space).items()
                  if '/op_' in label}
    assert operations == set(model_space.simplify()['normal/op_2_0'].values)


@pytest.mark.parametrize('first', ['nni_darts_ext', 'nni.nas.oneshot.pytorch.strategy'])
def test_the_strategies_are_nnis_classes_whatever_was_imported_first(first):
    """NNI's ``nni.nas.strategy`` keeps a stub DARTS if NNI's one-shot modules were imported before it: the
    package imports it first (so a user's later import of it is whole) and takes DARTS from the one-shot
    module (so its strategies are NNI's even where the user imported that first)."""
    check = ('import importlib, sys; importlib.import_module(sys.argv[1]); '
             'from nni.nas.oneshot.pytorch.strategy import DARTS; from nni_darts_ext import make_strategy; '
             'assert isinstance(make_strategy("pcdarts+stabilized", k=2), DARTS); '
             'import nni.nas.strategy; '
             'assert sys.argv[1] != "nni_darts_ext" or nni.nas.strategy.DARTS is DARTS, nni.nas.strategy.DARTS')
    finished = subprocess.run([sys.executable, '-c', check, first], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
