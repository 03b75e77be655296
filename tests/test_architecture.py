from __future__ import annotations

import math

import pytest

from nni_darts_ext import architecture

CELLS = {
    'normal/op_2_0': 'skip_connect', 'normal/input_2_0': [0],
    'normal/op_2_1': 'sep_conv_3x3', 'normal/input_2_1': [1],
    'normal/op_3_0': 'skip_connect', 'normal/input_3_0': [2],
    'normal/op_3_1': 'max_pool_3x3', 'normal/input_3_1': [0],
    'reduce/op_2_0': 'skip_connect', 'reduce/input_2_0': [1],
    'reduce/op_2_1': 'skip_connect', 'reduce/input_2_1': [0],
}


def test_cell_edges_and_collapse_counts_read_the_normal_cell():
    edges = architecture.cell_edges(CELLS)
    assert sorted(edges['normal']) == [(0, 2, 'skip_connect'), (0, 3, 'max_pool_3x3'),
                                       (1, 2, 'sep_conv_3x3'), (2, 3, 'skip_connect')]
    assert architecture.skip_connects(CELLS) == 2  # the reduction cell's two do not count
    assert architecture.parameter_free(CELLS) == 3


def test_describe_is_one_line_per_cell_type():
    assert architecture.describe(CELLS) == (
        'normal: 2<skip_connect(0)+sep_conv_3x3(1) 3<skip_connect(2)+max_pool_3x3(0) | '
        'reduce: 2<skip_connect(1)+skip_connect(0)')


def test_entropy_is_renormalised_over_the_listed_values():
    uniform_without_zero = {'a': {f'op{i}': 1 / 8 for i in range(7)}}  # NNI drops the zero op's 1/8
    assert architecture.mean_entropy(uniform_without_zero) == pytest.approx(math.log(7))
    assert architecture.mean_entropy({'a': {'x': 1.0, 'y': 0.0}, 'b': {0: 0.5, 1: 0.5}}) == pytest.approx(math.log(2) / 2)
    assert architecture.mean_entropy({}) == 0.0
