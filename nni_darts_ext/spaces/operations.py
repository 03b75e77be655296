"""The operation registry: the one table of candidate operations a YAML space may name.

Each entry builds a module from ``(channels, stride, affine)``. The table reuses the
NASNet-family operations that NNI's hub ships (the same ``sep_conv_3x3``, ``dil_conv_5x5``,
... that NNI's own DARTS space uses), so an architecture found on our spaces reads the same
as one found on ``nni.nas.hub.pytorch.DARTS``.

The zero operation (``none``) is not in the table: NNI's differentiable cell adds it to every
edge by itself and never exports it, so listing it would add a second zero.
"""

from __future__ import annotations

from typing import Callable

from torch import nn
from nni.nas.hub.pytorch.nasnet import OPS as _NASNET_OPERATIONS

OperationFactory = Callable[[int, int, bool], nn.Module]
"""``factory(channels, stride, affine) -> module``; stride 2 halves the resolution."""

ZERO_OPERATION = 'none'

OPERATIONS: dict[str, OperationFactory] = {
    name: factory for name, factory in _NASNET_OPERATIONS.items() if name != ZERO_OPERATION
}
