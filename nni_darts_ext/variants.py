"""Finding a variant by name: a registered preset, or the composition of several joined with ``+``.

Each technique's module registers its variant beside it (:func:`~nni_darts_ext.registry.preset`);
importing this module imports them all. Names joined with ``+`` (``pdarts+pcdarts+stabilized+ladarts``)
compose the variants' techniques into one search (:func:`~nni_darts_ext.composition.combine`),
with the options of them all.
"""

from __future__ import annotations

from typing import Any

from nni.nas.strategy import Strategy

from .composition import combine
from .errors import ConfigError, unknown_value
from .registry import VARIANTS, Variant, search_options
# each registers its variant, in the order the registry lists them
from .strategies import darts, pcdarts, pdarts, second_order, stabilized, scalable, ladarts, random_architecture  # noqa: F401, I001

__all__ = ['VARIANTS', 'Variant', 'find_variant', 'make_strategy', 'variant_name']


def variant_name(name: str) -> str:
    """The one spelling of a variant name: each ``+``-joined member stripped and lower-cased, as
    the registry writes it (`` PCDARTS + stabilized`` is ``pcdarts+stabilized``), so that one
    variant is reported under one name.

    Raises
    ------
    ConfigError
        For a name that is not a string.
    """
    if not isinstance(name, str):
        raise ConfigError(f'a variant name must be a string, got {name!r}; accepted: {", ".join(VARIANTS)}')
    return '+'.join(part.strip().lower() for part in name.split('+'))


def find_variant(name: str) -> Variant:
    """The registered variant ``name``, or the composition of the ``+``-joined ones (the name
    spelled as :func:`variant_name` writes it).

    A composition takes every option of its members but those one of them sets itself; where
    two members' defaults differ, the member whose technique fills the earlier slot wins
    (:data:`~nni_darts_ext.strategies.slots.SLOTS`: P-DARTS's and PC-DARTS's architecture learning
    rate over Stabilized-DARTS's).

    Raises
    ------
    ConfigError
        For an unknown name, or members that cannot be composed (naming the conflict).
    """
    name = variant_name(name)
    if name in VARIANTS:
        return VARIANTS[name]
    parts = name.split('+')
    for part in parts:
        if part not in VARIANTS:
            error = unknown_value('variant', part, VARIANTS)
            raise ConfigError(f'{error}; join them with + to compose techniques' if len(parts) == 1
                              else f'in {name!r}: {error}')
    members = [VARIANTS[part] for part in parts]
    for member in members:
        if not member.composable:
            composable = ', '.join(n for n, v in VARIANTS.items() if v.composable)
            raise ConfigError(f'variant {name!r}: {member.name} is a baseline, so it composes with nothing; '
                              f'composable: {composable}')
    try:
        factory = combine(*(member.factory for member in members),
                          names={member.factory: member.name for member in members})
    except ConfigError as err:
        raise ConfigError(f'variant {name!r}: {err}') from None
    # DARTS itself (no technique) last
    members.sort(key=lambda member: min(map(factory.techniques.index, member.factory.techniques),
                                        default=len(factory.techniques)))
    options = search_options(factory.techniques)
    defaults: dict[str, Any] = {}
    for member in members:
        for option, value in member.defaults.items():
            if option in options:
                defaults.setdefault(option, value)
    return Variant(name, '; '.join(member.summary for member in members), factory, defaults, options)


def make_strategy(name: str, **overrides: Any) -> Strategy:
    """The strategy of variant ``name`` (registered, or ``+``-joined) with the papers' defaults,
    updated by ``overrides``.

    Raises
    ------
    ConfigError
        For an unknown variant, an impossible composition, or an option the variant does not have.
    """
    return find_variant(name).build(**overrides)
