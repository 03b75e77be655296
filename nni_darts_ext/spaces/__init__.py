"""Model spaces: YAML files in ``search_spaces/``, a path to such a file, or NNI hub spaces."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .hub import HUB_PREFIX, HUB_SPACES, hub_space
from .operations import OPERATIONS
from .space import Regularization, Size, Space
from .yaml_space import read_yaml_space

SEARCH_SPACES_DIR = Path(__file__).resolve().parents[1] / 'search_spaces'
"""The named YAML spaces, package data of ``nni_darts_ext`` (the repository's top-level
``search_spaces`` is a link to this folder), so installed and editable copies both find them."""

__all__ = ['OPERATIONS', 'SEARCH_SPACES_DIR', 'Regularization', 'Size', 'Space', 'available_spaces', 'load_space']


def available_spaces() -> list[str]:
    """Every name :func:`load_space` accepts besides a path."""
    return sorted(p.stem for p in SEARCH_SPACES_DIR.glob('*.yml')) + [HUB_PREFIX + k for k in HUB_SPACES]


def load_space(name: str, in_channels: int, num_classes: int, image_size: int) -> Space:
    """A space by name (``darts_small``, ``nni:DARTS``) or by path to a YAML file.

    ``in_channels``, ``num_classes`` and ``image_size`` come from the dataset.
    """
    if name.startswith(HUB_PREFIX):
        return hub_space(name, num_classes, image_size)
    path = Path(name)
    if path.suffix not in ('.yml', '.yaml'):
        path = SEARCH_SPACES_DIR / f'{name}.yml'
    if not path.is_file():
        raise ConfigError(f'no model space {name!r} (no file {path}); accepted: {", ".join(available_spaces())}, '
                          'or a path to a .yml file')
    return read_yaml_space(path, in_channels, num_classes, image_size)
