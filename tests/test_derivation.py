"""Every variant derives a cell by the DARTS rule: per node, the incoming edges whose best non-zero
operation has the largest softmax weight; NNI's own export, which ranks raw alpha, differs."""

from __future__ import annotations

import math

import pytest
import torch
from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell
from nni.nas.strategy import DARTS

from nni_darts_ext import LatencyAwareDARTS, make_strategy
from nni_darts_ext.spaces import Size, load_space
from nni_darts_ext.supermodules.darts_cell import DartsCell
from nni_darts_ext.training import ClassifierModule
from nni_darts_ext.nni_internals import ALPHA, architecture_weights

from .conftest import cpu_settings

SPACE = load_space('darts_small', 1, 10, 8)
NODE = 4
"""The second intermediate node of a cell (inputs 0 and 1 are the cell's inputs): three incoming edges."""

# Raw logits per incoming edge of NODE. Edge 0's best operation has the largest raw logit (5) but
# `none` (10) holds nearly all of the edge's weight: softmax weight e^5 / (e^10 + e^5 + 6) = 0.0066.
# Edges 1 and 2 put 0.74 and 0.64 of their weight on their best operations.
LOGITS = {0: {'sep_conv_3x3': 5.0, 'none': 10.0}, 1: {'dil_conv_3x3': 3.0}, 2: {'avg_pool_3x3': 2.5}}


def set_logits(supernet) -> None:
    """Give every normal cell's edges into NODE the logits above (0 elsewhere on those edges)."""
    for cell in supernet.modules():
        if getattr(cell, 'label', None) != 'normal' or not hasattr(cell, ALPHA):
            continue
        for source, logits in LOGITS.items():
            edge = f'normal/{NODE}_{source}'
            names = getattr(cell, 'edge_operations', {}).get(edge) or [*cell.op_names, 'none']
            with torch.no_grad():
                architecture_weights(cell)[edge].copy_(torch.tensor([logits.get(name, 0.0) for name in names]))


def inputs_of(exported: dict, node: int = NODE) -> set[int]:
    return {exported[f'normal/input_{node}_{slot}'][0] for slot in range(2)}


def test_the_constructed_weights_are_what_the_comment_says():
    weights = torch.softmax(torch.tensor([5.0, 0, 0, 0, 0, 0, 0, 10.0]), -1)
    assert float(weights[0]) == pytest.approx(math.exp(5) / (math.exp(10) + math.exp(5) + 6), rel=1e-6)
    assert float(weights[0]) < 0.007
    assert float(torch.softmax(torch.tensor([3.0, *[0.0] * 7]), -1)[0]) == pytest.approx(0.742, abs=1e-3)


@pytest.mark.parametrize('variant', ['darts', 'darts2', 'stabilized', 'ladarts', 'pcdarts', 'pdarts'])
def test_an_edge_dominated_by_none_loses_under_every_variant(variant):
    options = cpu_settings(variant)
    options.pop('space', None)
    strategy = make_strategy(variant, **options)
    if isinstance(strategy, LatencyAwareDARTS):
        strategy.deploy(SPACE.search_space(Size(4, 3)), (1, 8, 8))
    supernet = strategy.mutate_model(SPACE.search_space(Size(4, 3)))
    set_logits(supernet)
    exported = search_module(strategy, supernet).export()
    assert inputs_of(exported) == {1, 2}
    ops = {exported[f'normal/input_{NODE}_{slot}'][0]: exported[f'normal/op_{NODE}_{slot}'] for slot in range(2)}
    assert ops == {1: 'dil_conv_3x3', 2: 'avg_pool_3x3'}


def search_module(strategy, supernet):
    """The strategy's search module over ``supernet`` (what ``export`` reads)."""
    module = strategy.configure_oneshot_module(ClassifierModule(0.1, 0.0, 0.9, 0.0))
    module.set_model(supernet)
    return module


@pytest.mark.parametrize('nni', [DARTS, lambda: make_strategy('nni-darts')], ids=['DARTS', 'nni-darts'])
def test_plain_cells_are_darts_cells_and_nnis_own_strategy_keeps_its_rule(nni):
    ours = make_strategy('darts').mutate_model(SPACE.search_space(Size(4, 3)))
    assert {type(m) for m in ours.modules() if isinstance(m, DifferentiableMixedCell)} == {DartsCell}
    nni = nni()
    reference = nni.mutate_model(SPACE.search_space(Size(4, 3)))
    assert {type(m) for m in reference.modules() if isinstance(m, DifferentiableMixedCell)} == {DifferentiableMixedCell}
    set_logits(reference)
    # NNI ranks raw alpha: edge 0's logit of 5 beats edge 2's 2.5, though `none` owns edge 0
    assert inputs_of(search_module(nni, reference).export()) == {0, 1}
    # and takes NNI's own architecture step (the training step of NNI's DartsLightningModule)
    assert getattr(search_module(nni, reference), 'estimator', None) is None
