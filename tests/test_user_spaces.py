"""Every variant and the README's compositions on the spaces an NNI user writes by hand.

One search step each (:func:`~tests.user_spaces.search_once`): the exported architecture names
choices of the space, with values among their candidates, and freezes on a fresh copy of it.
``pdarts``, ``ladarts`` and ``scalable`` have their own tests of these spaces beside their
mechanisms (the stages' pruning, the latency encoding, the factored names).
"""

from __future__ import annotations

import pytest
from nni.mutable import Categorical, CategoricalMultiple
from nni.nas.experiment import NasExperiment

from nni_darts_ext import make_strategy
from nni_darts_ext.strategies.ladarts import LatencyLoss

from .conftest import COMPOSED, cpu_settings
from .nnictl_helpers import free_port
from .user_spaces import USER_SPACES, part, search_once, tiny_evaluator

VARIANTS = ('darts', 'darts2', 'stabilized', 'pcdarts', 'random', *COMPOSED)
TINY_STAGES = [[1, None, 1, 0, 0.0], [1, 2, 1, 0, 0.4]]
"""P-DARTS in two one-step stages at the space's own depth, the second pruned to two candidates."""


def settings(variant: str, tmp_path) -> dict:
    options = cpu_settings(variant)
    if 'pdarts' in variant.split('+'):
        options['stages'] = TINY_STAGES
    if 'ladarts' in variant.split('+'):
        options.update(latency_samples=4, latency_repeats=1, latency_cache=tmp_path)
    return options


def within_the_space(architecture: dict, build) -> None:
    """Every exported choice is one of the space's, with a value among its candidates."""
    choices = build().simplify()
    assert architecture and set(architecture) <= set(choices)
    for label, value in architecture.items():
        mutable = choices[label]
        if isinstance(mutable, CategoricalMultiple):
            assert set(value) <= set(mutable.values) and len(value) == mutable.n_chosen, label
        else:
            assert isinstance(mutable, Categorical) and value in mutable.values, label


@pytest.mark.parametrize('space', USER_SPACES)
@pytest.mark.parametrize('variant', VARIANTS)
def test_a_search_step_on_a_users_space_exports_an_architecture_of_it(variant, space, tmp_path):
    build = USER_SPACES[space]
    within_the_space(search_once(make_strategy(variant, **settings(variant, tmp_path)), build), build)


@pytest.mark.parametrize('variant', ['pdarts', 'ladarts'])
def test_nas_experiment_runs_the_python_users_defaults_on_their_space(variant, tmp_path):
    """Through ``NasExperiment``, as a Python user runs it: P-DARTS's default stages take the evaluator's one
    epoch (one stage), LA-DARTS reads the input shape from the first batch."""
    options = {'latency_samples': 4, 'latency_repeats': 1, 'latency_cache': tmp_path} if variant == 'ladarts' else {}
    strategy = make_strategy(variant, **options)
    experiment = NasExperiment(USER_SPACES['dict LayerChoice'](), tiny_evaluator(max_epochs=1), strategy)
    try:
        experiment.run(port=free_port())
        architecture = experiment.export_top_models(formatter='dict')[0]
    finally:
        experiment.stop()
    within_the_space(architecture, USER_SPACES['dict LayerChoice'])
    if variant == 'pdarts':
        assert len(strategy.slots.schedule.stages) == 1 and strategy.slots.schedule.stages[0].epochs == 1
    else:
        assert part(strategy, LatencyLoss).input_shape == (1, 8, 8)
