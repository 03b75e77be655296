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
from .strategies import darts, pdarts, pcdarts, second_order, stabilized, ladarts, scalable, gdas, random_architecture  # noqa: F401, I001

__all__ = ['VARIANTS', 'Variant', 'find_variant', 'make_strategy', 'variant_name']


def variant_name(name: str) -> str:
    """The one spelling of a variant name, so that one search is reported under one name: each
    ``+``-joined member stripped and lower-cased as the registry writes it, and a composition's
    members in the order the registry lists them, without ``darts``, the search they all build on (`` Stabilized + PCDARTS `` and ``darts+pcdarts+stabilized`` are
    ``pcdarts+stabilized``).

    Raises
    ------
    ConfigError
        For a name that is not a string, an unknown variant, a member named twice, or members that
        cannot be composed.
    """
    return find_variant(name).name


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
    if not isinstance(name, str):
        raise ConfigError(f'a variant name must be a string, got {name!r}; accepted: {", ".join(VARIANTS)}')
    parts = [part.strip().lower() for part in name.split('+')]
    repeated = next((part for part in parts if parts.count(part) > 1), None)
    if repeated is not None:
        raise ConfigError(f'variant {name.strip()!r}: names {repeated} twice; name each technique once')
    if len(parts) > 1 and 'darts' in parts:  # the search every composition builds on
        parts.remove('darts')
    name = '+'.join(parts)
    if name in VARIANTS:
        return VARIANTS[name]
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
    members.sort(key=lambda member: min(map(factory.techniques.index, member.factory.techniques)))
    options = search_options(factory.techniques)
    defaults: dict[str, Any] = {}
    for member in members:
        for option, value in member.defaults.items():
            if option in options:
                defaults.setdefault(option, value)
    spelling = sorted(parts, key=list(VARIANTS).index)
    return Variant('+'.join(spelling), '; '.join(member.summary for member in members), factory, defaults, options)


def make_strategy(name: str, **overrides: Any) -> Strategy:
    """The strategy of variant ``name`` (registered, or ``+``-joined) with the papers' defaults,
    updated by ``overrides``.

    Raises
    ------
    ConfigError
        For an unknown variant, an impossible composition, or an option the variant does not have.
    """
    return find_variant(name).build(**overrides)
