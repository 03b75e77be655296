"""Composing techniques: ``combine(PDARTS, PCDARTS)`` is one search with both papers' techniques.

Each strategy class of this package is :class:`~nni_darts_ext.strategies.search.DifferentiableSearch`
with its techniques; their composition is the class with the techniques of all, each filling its
slots of the one search (:mod:`~nni_darts_ext.strategies.search`). Whether they fit together is
found by filling the slots: a second technique for a slot that holds one part (two estimators)
and cells asked for what they cannot do together (partial channels on factorized cells) are
refused, naming the two techniques and why.
"""

from __future__ import annotations

from functools import cache
from typing import Mapping

from .errors import ConfigError
from .strategies.search import DifferentiableSearch
from .strategies.slots import SLOTS, Technique, fill_slots


def combine(*strategies: type, names: Mapping[type, str] | None = None) -> type[DifferentiableSearch]:
    """One strategy class with the techniques of every class of ``strategies``.

    A class without techniques (``DifferentiableSearch``, DARTS itself) adds none; the class of one
    technique is returned as it is. The class takes every keyword option of its techniques, e.g.
    ``combine(PCDARTS, StabilizedDARTS)(k=2, eta=1e-3)``; its techniques are in slot order
    (:data:`~nni_darts_ext.strategies.slots.SLOTS`), whatever the order given.

    Parameters
    ----------
    names
        What to call each class in error messages (the registry passes variant names).

    Raises
    ------
    ConfigError
        For a class that is not a search of this package (such as random sampling, which does not
        search), a technique named twice, or techniques that cannot share one search.
    """
    def name(strategy: type) -> str:
        return (names or {}).get(strategy, strategy.__name__)

    for strategy in strategies:
        if not (isinstance(strategy, type) and issubclass(strategy, DifferentiableSearch)) \
                or (strategy is not DifferentiableSearch and not strategy.techniques):
            raise ConfigError(f'{name(strategy)} is not a DARTS technique and cannot be composed (composable: '
                              'the strategy classes of techniques, such as PCDARTS, on top of DifferentiableSearch)')
    techniques: list[tuple[str, type[Technique]]] = []
    for strategy in strategies:
        for technique in strategy.techniques:
            if any(technique is known for _, known in techniques):
                raise ConfigError(f'{name(strategy)} is named twice')
            techniques.append((name(strategy), technique))
    # every technique fills the same slots whatever its options: a dry run finds the conflicts
    slots = fill_slots([(label, technique()) for label, technique in techniques])
    order = {label: min((SLOTS.index(slot) for slot, fillers in slots.filled.items() if label in fillers),
                        default=len(SLOTS)) for label, _ in techniques}
    ordered = tuple(technique for label, technique in sorted(techniques, key=lambda item: order[item[0]]))
    if len(ordered) == 1:
        return next(strategy for strategy in strategies if strategy.techniques)
    return _composed(ordered) if ordered else DifferentiableSearch


@cache
def _composed(techniques: tuple[type[Technique], ...]) -> type[DifferentiableSearch]:
    """The search class with ``techniques`` (in slot order), made once and kept in this module, so
    that the same composition is the same class and pickles by name."""
    name = '_'.join(technique.__name__ for technique in techniques)
    composed = type(name, (DifferentiableSearch,), {
        '__module__': __name__, 'techniques': techniques,
        '__doc__': 'The search with ' + ', '.join(technique.__name__ for technique in techniques) + ' (see combine).',
    })
    globals()[name] = composed
    return composed
