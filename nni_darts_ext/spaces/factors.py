"""Factored candidates (Scalable-DARTS): an activation function times a convolution type.

A factored space names each combination as an ordinary candidate, ``ACTIVATION+CONV``
(``swish+sep_conv_3x3``), so NNI's ``freeze``, export and random sampling work on the product
space unchanged. The names alone say how a choice factors (:func:`factoring`): a user's own
``LayerChoice`` or ``Cell`` whose candidates are named ``relu+conv3x3``, ``tanh+conv3x3``,
``relu+conv5x5``, ``tanh+conv5x5`` factors as {relu, tanh} x {conv3x3, conv5x5}. In the YAML
spaces, a combination is the registry's convolution with every ReLU replaced by the chosen
activation (:class:`ActivatedOperation`); a frozen model builds only the chosen ones.

Only operations whose layers are a flat sequence opened by a ReLU take an activation
(:data:`ACTIVATED_OPERATIONS`: NNI's ``sep_conv_*``, ``dil_conv_*``, ``conv_*``); pooling and
skip-connects stay unfactored candidates beside the product.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from ..errors import ConfigError, unknown_value
from .operations import OPERATIONS

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    'relu': nn.ReLU,
    'relu6': nn.ReLU6,
    'swish': nn.SiLU,
    'hardswish': nn.Hardswish,
    'leaky_relu': nn.LeakyReLU,
    'elu': nn.ELU,
    'gelu': nn.GELU,
    'mish': nn.Mish,
}
"""The activation factor's values: name -> module class (all parameter-free)."""

ACTIVATION, CONV = 'activation', 'conv'
FACTORS = (ACTIVATION, CONV)
"""The factors of a factored edge, in the order of a combination's name."""

SEPARATOR = '+'


def _takes_activation(name: str) -> bool:
    # Probed at both strides: a reduction edge may build a different module (skip_connect does).
    for stride in (1, 2):
        operation = OPERATIONS[name](2, stride, False)
        if not (isinstance(operation, nn.Sequential) and isinstance(operation[0], nn.ReLU)):
            return False
        if any(isinstance(m, nn.ReLU) for layer in operation for m in layer.modules() if m is not layer):
            return False  # a ReLU nested below the top level could not be replaced
    return True


ACTIVATED_OPERATIONS: tuple[str, ...] = tuple(name for name in OPERATIONS if _takes_activation(name))
"""Registry operations that accept another activation: a flat sequence of layers opened by a ReLU."""


def combination(activation: str, conv: str) -> str:
    """The candidate name of a combination: ``swish+sep_conv_3x3``."""
    return f'{activation}{SEPARATOR}{conv}'


def split_combination(name: str) -> tuple[str, str] | None:
    """``(activation, conv)`` of a combination's name; ``None`` for an unfactored candidate."""
    if SEPARATOR not in name:
        return None
    activation, _, conv = name.partition(SEPARATOR)
    return activation, conv


class ActivatedOperation(nn.Sequential):
    """A registry operation with every ReLU replaced by another activation.

    The layers (and so the ``state_dict`` keys) are the registry operation's; only the
    activations differ. ``activation_slots`` are the indices of the activation layers; the
    first layer is always one.
    """

    def __init__(self, operation: nn.Sequential, activation: Callable[[], nn.Module]):
        super().__init__(*(activation() if isinstance(layer, nn.ReLU) else layer for layer in operation))
        self.activation_slots = tuple(i for i, layer in enumerate(operation) if isinstance(layer, nn.ReLU))

    def body(self, activated: torch.Tensor, activation: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The layers after the first activation, on its output ``activated``, with ``activation``
        applied at the later activation slots. ``op(x) == op.body(op[0](x), op[0])``."""
        x = activated
        for index, layer in enumerate(self):
            if index:
                x = activation(x) if index in self.activation_slots else layer(x)
        return x


def build_operation(name: str, channels: int, stride: int, affine: bool) -> nn.Module:
    """A registry operation by name, or a combination ``ACTIVATION+CONV`` of two registry entries."""
    factors = split_combination(name)
    if factors is None:
        return OPERATIONS[name](channels, stride, affine)
    activation, conv = factors
    check_factor(ACTIVATION, activation)
    check_factor(CONV, conv)
    return ActivatedOperation(OPERATIONS[conv](channels, stride, affine), ACTIVATIONS[activation])


def check_factor(factor: str, value: object) -> None:
    """Refuse a value outside the factor's accepted values, naming them."""
    accepted = ACTIVATIONS if factor == ACTIVATION else ACTIVATED_OPERATIONS
    if not isinstance(value, str):
        raise unknown_value(factor, value, accepted)
    if factor == CONV and value in OPERATIONS and value not in accepted:
        raise ConfigError(f'{value!r} takes no activation (it is not a sequence of layers opened by a ReLU); '
                          f'accepted {CONV} values: {", ".join(accepted)}; list it under operations instead')
    if value not in accepted:
        raise unknown_value(factor, value, accepted)


def combinations(activations: list[str], convs: list[str]) -> list[str]:
    """Every combination's name, activation-major: ``relu+sep_conv_3x3, relu+sep_conv_5x5, ...``."""
    return [combination(a, c) for a in activations for c in convs]


def factor_values(names: list[str], where: str) -> tuple[list[str], list[str]] | None:
    """The activations and convolutions that ``names`` (a cell's candidates) are the product of.

    ``None`` when no candidate is a combination.

    Raises
    ------
    ConfigError
        Naming ``where``, when the combinations are not the full product of their factors.
    """
    pairs = [p for p in map(split_combination, names) if p is not None]
    if not pairs:
        return None
    activations = list(dict.fromkeys(a for a, _ in pairs))
    convs = list(dict.fromkeys(c for _, c in pairs))
    missing = sorted(set(combinations(activations, convs)) - {combination(a, c) for a, c in pairs})
    if missing:
        raise ConfigError(f'{where}: the combinations are not a full product of {ACTIVATION} x {CONV}; '
                          f'missing {", ".join(missing)}')
    return activations, convs


class Factoring(NamedTuple):
    """How the candidates of one choice factor.

    Attributes
    ----------
    names
        Every candidate name, in the choice's order.
    others
        The unfactored candidates (names without ``+``), in that order.
    activations, convs
        The factors' values, in order of first appearance: the combinations are their full product.
    """
    names: list[str]
    others: list[str]
    activations: list[str]
    convs: list[str]


def factoring(names: Sequence[object], where: str) -> Factoring | None:
    """How a choice's candidate ``names`` factor; ``None`` when they do not: a name is not a string
    (a list ``LayerChoice`` 's 0, 1, ...) or no name is a combination ``ACTIVATION+CONV``.

    Raises
    ------
    ConfigError
        Naming ``where``, when the combinations are not the full product of their factors.
    """
    if not all(isinstance(name, str) for name in names):
        return None
    factors = factor_values(list(names), where)
    if factors is None:
        return None
    return Factoring(list(names), [name for name in names if split_combination(name) is None], *factors)
