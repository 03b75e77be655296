"""NNI's own hub spaces, addressed as ``nni:NAME``.

Both expect 3-channel images (grey datasets are repeated to three channels for them);
NNI's DARTS space is built for 10 classes only.
"""

from __future__ import annotations

from typing import Callable

from nni.nas.hub.pytorch import DARTS, NasBench201
from nni.nas.nn.pytorch import ModelSpace

from ..errors import ConfigError, choose
from .space import Size, Space

HUB_PREFIX = 'nni:'
HUB_INPUT_CHANNELS = 3


def _darts(num_classes: int) -> Callable[[Size, bool], ModelSpace]:
    if num_classes != 10:
        raise ConfigError(f'nni:DARTS has a 10-class classifier; the dataset has {num_classes} classes '
                          '(use a YAML space such as darts.yml instead)')
    # NNI's space always uses affine batch norm; ``affine`` cannot change it.
    return lambda size, affine: DARTS(width=size.width, num_cells=size.cells, dataset='cifar')


def _nasbench201(num_classes: int) -> Callable[[Size, bool], ModelSpace]:
    return lambda size, affine: NasBench201(stem_out_channels=size.width, num_modules_per_stack=size.cells,
                                            num_labels=num_classes)


# name -> (builder for a class count, search size, evaluation size): the papers' sizes.
HUB_SPACES = {
    'DARTS': (_darts, Size(width=16, cells=8), Size(width=36, cells=20)),
    'NasBench201': (_nasbench201, Size(width=16, cells=5), Size(width=16, cells=5)),
}


def hub_space(name: str, num_classes: int) -> Space:
    """The hub space ``nni:NAME``."""
    key = name[len(HUB_PREFIX):]
    if key not in HUB_SPACES:
        raise choose('NNI hub space', name, [HUB_PREFIX + k for k in HUB_SPACES])
    builder, search, evaluation = HUB_SPACES[key]
    return Space(name=name, build=builder(num_classes), search=search, evaluation=evaluation,
                 input_channels=HUB_INPUT_CHANNELS)
