"""Model spaces written as YAML data, validated key by key.

A file looks like::

    description: The DARTS cell space at the paper's size.
    operations: [max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, ...]
    nodes: 4              # intermediate nodes per cell
    cells: 8              # cells while searching
    width: 16             # channels of the first cells while searching
    stem_multiplier: 3    # optional, default 3
    evaluation:           # optional: the size the found cell is retrained at
      cells: 20
      width: 36
    factors:              # optional: factored candidates beside the operations (Scalable-DARTS)
      activation: [relu, swish, ...]
      conv: [sep_conv_3x3, dil_conv_3x3, ...]

With ``factors``, every combination ``ACTIVATION+CONV`` (``swish+sep_conv_3x3``) is a candidate
of every edge, after the unfactored ``operations`` (see :mod:`.factors`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, check_number, unknown_value
from ..yaml_reading import load_yaml
from .cell_network import PREDECESSORS, CellNetwork, reduction_positions
from .factors import ACTIVATION, CONV, FACTORS, check_factor, combinations
from .operations import OPERATIONS, ZERO_OPERATION
from .space import Regularization, Size, Space

REQUIRED_KEYS = {'operations', 'nodes', 'cells', 'width'}
OPTIONAL_KEYS = {'description', 'stem_multiplier', 'evaluation', 'factors'}
EVALUATION_KEYS = {'cells', 'width'}


def read_yaml_space(path: Path, in_channels: int, num_classes: int, image_size: int) -> Space:
    """Load and validate ``path``; the dataset supplies channels, classes and image size."""
    try:
        spec = load_yaml(path.read_text())
    except UnicodeDecodeError:
        raise ConfigError(f'{path}: not a text file; a model space is a YAML file (UTF-8)') from None
    except yaml.YAMLError as err:
        raise ConfigError(f'{path}: not valid YAML: {" ".join(str(err).split())}') from None
    if not isinstance(spec, dict):
        raise ConfigError(f'{path}: expected a mapping with keys {sorted(REQUIRED_KEYS)}, got {type(spec).__name__}')
    _check_keys(path, spec, REQUIRED_KEYS, OPTIONAL_KEYS)

    operations = spec['operations']
    if not isinstance(operations, list) or not operations:
        raise ConfigError(f'{path}: operations must be a non-empty list of names')
    for name in operations:
        if not isinstance(name, str):
            raise ConfigError(f'{path}: operations must be a list of names, got {name!r} in it; '
                              f'accepted names: {", ".join(OPERATIONS)}')
        if name == ZERO_OPERATION:
            raise ConfigError(f"{path}: do not list '{ZERO_OPERATION}': the differentiable cell adds the zero "
                              'operation to every edge by itself')
        if name not in OPERATIONS:
            raise ConfigError(f'{path}: {unknown_value("operation", name, OPERATIONS)}')
    if len(set(operations)) != len(operations):
        raise ConfigError(f'{path}: operations are listed twice: {operations}')
    if 'factors' in spec:
        operations = operations + _factored_candidates(path, spec['factors'], operations)

    nodes = _positive_int(path, spec, 'nodes')
    stem_multiplier = _positive_int(path, spec, 'stem_multiplier', default=3)
    search = Size(width=_positive_int(path, spec, 'width'), cells=_positive_int(path, spec, 'cells'))
    evaluation_spec = spec.get('evaluation', {})
    if not isinstance(evaluation_spec, dict):
        raise ConfigError(f'{path}: evaluation must be a mapping with keys {sorted(EVALUATION_KEYS)}')
    _check_keys(path, evaluation_spec, set(), EVALUATION_KEYS, where='evaluation')
    evaluation = Size(width=_positive_int(path, evaluation_spec, 'width', default=search.width),
                      cells=_positive_int(path, evaluation_spec, 'cells', default=search.cells))
    build = partial(_build, operations=list(operations), nodes=nodes, stem_multiplier=stem_multiplier,
                    in_channels=in_channels, num_classes=num_classes)
    edges = nodes * PREDECESSORS + nodes * (nodes - 1) // 2  # node i reads the cell's inputs and nodes 0..i-1
    space = Space(name=str(path), build=build, search=search, evaluation=evaluation, input_channels=in_channels,
                  regularized=True, candidates_per_cell=edges * len(operations))
    for size, where in ((search, f'{path}: cells'), (evaluation, f'{path}: evaluation: cells')):
        space.check_size(size, where)
        check_resolution(size.cells, image_size, where=str(path))
    return space


def _factored_candidates(path: Path, factors: Any, operations: list[str]) -> list[str]:
    """The combinations of the ``factors`` mapping, validated value by value."""
    if not isinstance(factors, dict):
        raise ConfigError(f'{path}: factors must be a mapping with keys {", ".join(FACTORS)}, '
                          f'got {type(factors).__name__}')
    _check_keys(path, factors, set(FACTORS), set(), where='factors')
    for factor in FACTORS:
        values = factors[factor]
        if not isinstance(values, list) or not values:
            raise ConfigError(f'{path}: factors: {factor} must be a non-empty list of names, got {values!r}')
        for value in values:
            try:
                check_factor(factor, value)
            except ConfigError as err:
                raise ConfigError(f'{path}: factors: {factor}: {err}') from None
        if len(set(values)) != len(values):
            raise ConfigError(f'{path}: factors: {factor} values are listed twice: {values}')
    both = [conv for conv in factors[CONV] if conv in operations]
    if both:
        raise ConfigError(f'{path}: {both[0]!r} is both an operation and a {CONV} factor value; list it once')
    return combinations(factors[ACTIVATION], factors[CONV])


def check_resolution(cells: int, image_size: int, where: str) -> None:
    """Refuse depths whose reduction cells would shrink the image below one pixel."""
    if cells < 1:
        raise ConfigError(f'{where}: cells must be at least 1, got {cells}')
    smallest = image_size // 2 ** len(reduction_positions(cells))
    if smallest < 1:
        raise ConfigError(f'{where}: {cells} cells reduce a {image_size}x{image_size} image below one pixel')


def _build(size: Size, affine: bool, regularization: Regularization = Regularization(), **kwargs: Any) -> CellNetwork:
    return CellNetwork(cells=size.cells, width=size.width, affine=affine, drop_path=regularization.drop_path,
                       auxiliary_head=regularization.auxiliary_head, **kwargs)


def _check_keys(path: Path, spec: dict, required: set[str], optional: set[str], where: str = '') -> None:
    prefix = f'{path}: {where + ": " if where else ""}'
    missing = required - spec.keys()
    if missing:
        raise ConfigError(f'{prefix}missing key {sorted(missing)[0]!r}; required keys: {", ".join(sorted(required))}')
    unknown = spec.keys() - required - optional
    if unknown:
        raise ConfigError(prefix + unknown_value('key', sorted(unknown)[0], required | optional).args[0])


def _positive_int(path: Path, spec: dict, key: str, default: int | None = None) -> int:
    value = spec.get(key, default)
    check_number(f'{path}: {key}', value, integer=True, strict=True)
    return value
