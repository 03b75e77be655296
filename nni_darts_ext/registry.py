"""The variants: named strategy presets, each registered beside its technique with its paper's defaults.

``nni_darts_ext.strategies.pcdarts`` registers ``pcdarts`` (:class:`~nni_darts_ext.strategies.pcdarts.PCDARTS`
at the paper's K, learning rate and warm-up), and so on; :mod:`nni_darts_ext.variants` finds them by
name and composes them (``pdarts+pcdarts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

VARIANTS: dict[str, Variant] = {}
"""Every registered variant by name."""


@dataclass(frozen=True)
class Variant:
    """A named strategy preset.

    Attributes
    ----------
    name
        The name experiments use.
    summary
        One line: the paper and the technique.
    factory
        The strategy class (or a function of keyword options that builds the strategy).
    defaults
        The paper's settings, applied unless overridden.
    options
        The keyword options a user may set.
    composable
        Whether its techniques compose with others' (a baseline's do not).
    """
    name: str
    summary: str
    factory: Any
    defaults: dict[str, Any] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    composable: bool = True

    def build(self, **overrides: Any) -> Any:
        unknown = sorted(set(overrides) - set(self.options))
        if unknown:
            accepted = ', '.join(self.options) or 'none'
            raise ConfigError(f'variant {self.name!r} has no option {unknown[0]!r}; its options: {accepted}')
        return self.factory(**{**self.defaults, **overrides})


SEARCH_OPTIONS = ('arc_learning_rate', 'arc_weight_decay', 'gradient_clip_val', 'warmup_epochs')
"""The options of every search, after its techniques' own (NNI's DARTS's)."""

SEARCH_DEFAULTS = {'arc_learning_rate': 3e-4, 'arc_weight_decay': 1e-3, 'gradient_clip_val': 5.0}
"""DARTS's architecture learning rate, architecture weight decay and gradient clip, the defaults of
every searching variant."""


def preset(name: str, summary: str, strategy: Any, *, composable: bool = True, **defaults: Any) -> Variant:
    """Register the variant ``name``: the search class ``strategy`` with the paper's ``defaults`` (over
    :data:`SEARCH_DEFAULTS`); its options are its techniques' and the search's, but those a technique
    sets itself."""
    return register(Variant(name, summary, strategy, {**SEARCH_DEFAULTS, **defaults},
                            search_options(strategy.techniques), composable))


def search_options(techniques: tuple[Any, ...]) -> tuple[str, ...]:
    """The options of a search with ``techniques``: each technique's, followed by the search's, but
    those a technique sets itself."""
    set_itself = {option for technique in techniques for option in technique.sets_itself}
    options = [option for technique in techniques or (None,)
               for option in (*(technique.options() if technique else ()), *SEARCH_OPTIONS)]
    return tuple(dict.fromkeys(option for option in options if option not in set_itself))


def register(variant: Variant) -> Variant:
    """Add ``variant`` to :data:`VARIANTS` under its name (which must be new)."""
    if variant.name in VARIANTS:
        raise ValueError(f'a variant named {variant.name!r} is registered already')
    VARIANTS[variant.name] = variant
    return variant
