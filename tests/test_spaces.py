from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from nni_darts_ext import PCDARTS, ScalableDARTS
from nni_darts_ext.errors import ConfigError
from nni_darts_ext.spaces import SEARCH_SPACES_DIR, Size, available_spaces, load_space
from nni_darts_ext.spaces.operations import OPERATIONS
from nni_darts_ext.nni_internals import ALPHA

DARTS_OPERATIONS = ['max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5',
                    'dil_conv_3x3', 'dil_conv_5x5']


def write_space(tmp_path: Path, spec) -> str:
    path = tmp_path / 'space.yml'
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    return str(path)


def small_spec(**changes):
    spec = {'operations': ['skip_connect', 'sep_conv_3x3'], 'nodes': 2, 'cells': 3, 'width': 4}
    spec.update(changes)
    return {k: v for k, v in spec.items() if v is not None}


def test_darts_yml_has_the_paper_defaults():
    spec = yaml.safe_load((SEARCH_SPACES_DIR / 'darts.yml').read_text())
    assert spec['operations'] == DARTS_OPERATIONS and 'none' not in spec['operations']
    assert (spec['nodes'], spec['cells'], spec['width']) == (4, 8, 16)
    space = load_space('darts', in_channels=3, num_classes=10, image_size=32)
    assert space.search == Size(16, 8) and space.evaluation == Size(36, 20)


def test_cell_space_has_one_choice_per_operation_and_input_and_the_zero_op_in_search():
    from nni.nas.strategy import DARTS
    space = load_space('darts_small', in_channels=1, num_classes=10, image_size=8)
    model_space = space.search_space()
    labels = model_space.simplify()
    # 4 nodes x 2 slots x (op + input) x 2 cell types
    assert len(labels) == 4 * 2 * 2 * 2
    assert list(labels['normal/op_2_0'].values) == DARTS_OPERATIONS
    DARTS().mutate_model(model_space)
    alphas = [p for name, p in model_space.named_parameters() if ALPHA in name]
    assert alphas and all(len(a) == len(DARTS_OPERATIONS) + 1 for a in alphas)  # + the zero op


def test_dataset_shape_reaches_the_network():
    space = load_space('darts_small', in_channels=1, num_classes=7, image_size=8)
    model_space = space.search_space()
    assert model_space.stem[0].in_channels == 1 and model_space.classifier.out_features == 7
    architecture = {label: mutable.default() for label, mutable in model_space.simplify().items()}
    model = space.evaluation_model(architecture)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 7)


POOLINGS = ('max_pool_3x3', 'avg_pool_3x3')


def cell_batch_norms(model: nn.Module) -> list[nn.BatchNorm2d]:
    """The batch norms inside the cells: preprocessing and candidates (the stem's aside)."""
    return [m for cell in model.cells for m in cell.modules() if isinstance(m, nn.BatchNorm2d)]


def pooling_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every pooling layer inside the cells, by module name."""
    return {name: m for name, m in model.named_modules()
            if name.startswith('cells.') and isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))}


def assert_search_form(model: nn.Module, pools: int) -> None:
    """No affine batch norm in the cells, and each of the ``pools`` pooling layers is the first of a
    ``Sequential(pool, BatchNorm2d(affine=False))``."""
    norms = cell_batch_norms(model)
    assert norms and not any(m.affine or m.weight is not None or m.bias is not None for m in norms)
    preprocessing = [m for cell in model.cells for m in cell.preprocessor.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(preprocessing) == 2 * len(model.cells) and not any(m.affine for m in preprocessing)
    layers = pooling_layers(model)
    assert len(layers) == pools
    for name, layer in layers.items():
        parent_name, _, index = name.rpartition('.')
        parent = model.get_submodule(parent_name)
        assert index == '0' and isinstance(parent, nn.Sequential) and len(parent) == 2, name
        assert type(parent[1]) is nn.BatchNorm2d and not parent[1].affine, name


@pytest.mark.parametrize('name', ['darts_small', 'darts_small_factorized'])
def test_search_space_is_the_papers_search_network(name):
    """DARTS's model_search.py: cells' batch norms without affine parameters, pooling then BatchNorm2d(affine=False)."""
    model_space = load_space(name, in_channels=1, num_classes=10, image_size=8).search_space()
    assert_search_form(model_space, pools=3 * 8 * len(POOLINGS))  # 3 cells x 4 nodes x 2 slots
    # each pooling candidate is exactly the reference module at its cell's width and stride
    widths, strides = [4, 8, 16], [1, 2, 2]  # cells 1 and 2 reduce: double width, halve resolution
    for cell, width, stride in zip(model_space.cells, widths, strides):
        for slots in cell.ops:
            for choice in slots:
                for pool in POOLINGS:
                    expected = nn.Sequential(OPERATIONS[pool](width, stride, False),
                                             nn.BatchNorm2d(width, affine=False))
                    assert repr(choice[pool]) == repr(expected)
    assert model_space(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize('strategy, name', [(PCDARTS(k=2), 'darts_small'),
                                            (ScalableDARTS(), 'darts_small_factorized')])
def test_supernets_keep_the_search_form(strategy, name):
    """PC-DARTS rebuilds the pooling's batch norm for C/K channels; Scalable-DARTS keeps pooling unfactored."""
    supernet = strategy.mutate_model(load_space(name, in_channels=1, num_classes=10, image_size=8).search_space())
    assert_search_form(supernet, pools=3 * (2 + 3 + 4 + 5) * len(POOLINGS))  # one pool per edge and kind
    if isinstance(strategy, PCDARTS):
        first_cell = [name for name in pooling_layers(supernet) if name.startswith('cells.0.')]
        norms = {supernet.get_submodule(name.rpartition('.')[0])[1].num_features for name in first_cell}
        assert first_cell and norms == {4 // 2}  # width 4, k = 2
    assert supernet(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_evaluation_model_is_the_papers_evaluation_network():
    """DARTS's model.py: plain pooling, affine preprocessing; the search space's labels freeze it."""
    space = load_space('darts_small', in_channels=1, num_classes=10, image_size=8)
    labels = space.search_space().simplify()
    architecture = {label: mutable.default() for label, mutable in labels.items()}
    for index, label in enumerate(sorted(label for label in labels if '/op_' in label)):
        architecture[label] = POOLINGS[index % len(POOLINGS)]
    assert set(space.build(space.evaluation, True).simplify()) == set(labels)
    model = space.evaluation_model(architecture)
    ops = [op for cell in model.cells for slots in cell.ops for op in slots]
    assert len(ops) == 5 * 8 and all(type(op) in (nn.MaxPool2d, nn.AvgPool2d) for op in ops)
    preprocessing = [m for cell in model.cells for m in cell.preprocessor.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(preprocessing) == 2 * 5 and all(m.affine for m in preprocessing)
    assert cell_batch_norms(model) == preprocessing  # no batch norm after the pooling
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize('spec, message', [
    (small_spec(nodes=None), "missing key 'nodes'"),
    (small_spec(operations=['skip_connect', 'conv_9x9']), "unknown operation 'conv_9x9'; accepted: "),
    (small_spec(operations=['none', 'skip_connect']), "do not list 'none'"),
    (small_spec(operations=[]), 'operations must be a non-empty list'),
    (small_spec(operations=['skip_connect', 'skip_connect']), 'listed twice'),
    (small_spec(width=0), 'width must be a positive integer, got 0'),
    (small_spec(cells='three'), "cells must be a positive integer, got 'three'"),
    (small_spec(depth=3), "unknown key 'depth'; accepted: cells, description"),
    (small_spec(evaluation={'cells': 2, 'channels': 3}), "evaluation: unknown key 'channels'"),
    (small_spec(cells=30), 'reduce a 2x2 image below one pixel'),
    ('operations: [skip_connect\nnodes: 2', 'not valid YAML'),
    ('- a list', 'expected a mapping'),
])
def test_yaml_errors_name_the_problem(tmp_path, spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_space(write_space(tmp_path, spec), in_channels=1, num_classes=10, image_size=2)


def test_unknown_operation_error_lists_the_registry(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_space(write_space(tmp_path, small_spec(operations=['conv_9x9'])), 1, 10, 8)
    assert all(name in str(info.value) for name in OPERATIONS)


def test_unknown_space_lists_the_accepted_names():
    with pytest.raises(ConfigError) as info:
        load_space('dartz', 1, 10, 8)
    assert 'darts_small' in str(info.value) and 'nni:DARTS' in str(info.value)
    assert {'darts', 'darts_small', 'nni:DARTS', 'nni:NasBench201'} <= set(available_spaces())


@pytest.mark.parametrize('name', ['nni:DARTS', 'nni:NasBench201'])
def test_hub_spaces_by_name(name):
    space = load_space(name, in_channels=1, num_classes=10, image_size=8)
    assert space.input_channels == 3
    model_space = space.search_space(Size(width=4, cells=3))
    architecture = {label: mutable.default() for label, mutable in model_space.simplify().items()}
    model = space.evaluation_model(architecture, Size(width=4, cells=3))
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_hub_errors():
    with pytest.raises(ConfigError, match="unknown NNI hub space 'nni:ResNet'; accepted: nni:AmoebaNet, nni:AutoFormer, "
                                          "nni:DARTS, nni:ENAS, nni:MobileNetV3Space, nni:NASNet, nni:NasBench101, "
                                          "nni:NasBench201, nni:PNAS, nni:ProxylessNAS, nni:ShuffleNetSpace"):
        load_space('nni:ResNet', 3, 10, 32)
    with pytest.raises(ConfigError, match='10-class classifier; the dataset has 100 classes'):
        load_space('nni:DARTS', 3, 100, 32)
