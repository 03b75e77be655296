"""Composing techniques: ``combine(PDARTS, PCDARTS)`` is one strategy with both papers' techniques.

Every technique is a subclass of :class:`~nni_darts_ext.strategies.darts.ValidatedDARTS` that
changes one part of the search and passes the rest on with ``super()``:

- the supernet modules (``default_mutation_hooks``, each technique's hooks before the others';
  ``cell_options``, what one technique sets on the cells another builds: PC-DARTS's ``k`` on
  P-DARTS's progressive cells);
- the architecture-gradient estimator and the architecture loss (the ``architecture_gradient``
  and ``architecture_term`` each passes to the base class);
- the stage schedule (P-DARTS's ``mutate_model`` and ``mutate_evaluator``);
- the trial's summary of the search (``search_summary``).

Python's method resolution order chains them, so the composition is a class whose bases are
the techniques, in :data:`TECHNIQUE_ORDER`. Pairs that cannot share a search are refused with
the reason (:data:`CONFLICTS`).
"""

from __future__ import annotations

from functools import cache
from typing import Mapping

from .errors import ConfigError
from .strategies.darts import ValidatedDARTS
from .strategies.ladarts import LatencyAwareDARTS
from .strategies.pcdarts import PCDARTS
from .strategies.pdarts import PDARTS
from .strategies.scalable import ScalableDARTS
from .strategies.second_order import SecondOrderDARTS
from .strategies.stabilized import StabilizedDARTS

TECHNIQUE_ORDER: tuple[type[ValidatedDARTS], ...] = (
    PDARTS,  # first: its progressive cells take the options of the cell techniques after it
    PCDARTS, ScalableDARTS, LatencyAwareDARTS, StabilizedDARTS, SecondOrderDARTS,
)
"""The techniques, in the order a composition chains them (and takes defaults two of them disagree on)."""

CONFLICTS: dict[frozenset[type[ValidatedDARTS]], str] = {
    frozenset({StabilizedDARTS, SecondOrderDARTS}):
        'both set the architecture-gradient estimator (the amended one, the second-order one); a search has one',
    frozenset({ScalableDARTS, PCDARTS}):
        'both build the supernet cells, and factorized cells have no partial-channel form',
    frozenset({ScalableDARTS, PDARTS}):
        "P-DARTS prunes each edge's operation vector; factorized cells hold one vector per factor instead",
    frozenset({ScalableDARTS, LatencyAwareDARTS}):
        "LA-DARTS's latency encoding reads one vector per edge over the operations; factorized cells hold one "
        'per factor instead',
}
"""Techniques that cannot share a search, and why."""


def combine(*techniques: type, names: Mapping[type, str] | None = None) -> type[ValidatedDARTS]:
    """One strategy class with every technique of ``techniques`` (strategy classes).

    ``ValidatedDARTS`` itself adds nothing and is dropped; one technique is returned as it is.
    The class takes every keyword option of its techniques, e.g.
    ``combine(PCDARTS, StabilizedDARTS)(k=2, eta=1e-3)``.

    Parameters
    ----------
    names
        What to call each class in error messages (the registry passes variant names).

    Raises
    ------
    ConfigError
        For a class that is not a technique (such as random sampling, which does not search),
        a technique named twice, or a pair in :data:`CONFLICTS`.
    """
    def name(technique: type) -> str:
        return (names or {}).get(technique, technique.__name__)

    for technique in techniques:
        if technique is not ValidatedDARTS and technique not in TECHNIQUE_ORDER:
            known = ', '.join(t.__name__ for t in TECHNIQUE_ORDER)
            raise ConfigError(f'{name(technique)} is not a DARTS technique and cannot be composed '
                              f'(composable: {known}, on top of ValidatedDARTS)')
    chosen = [t for t in techniques if t is not ValidatedDARTS]
    for technique in chosen:
        if chosen.count(technique) > 1:
            raise ConfigError(f'{name(technique)} is named twice')
    for index, first in enumerate(chosen):
        for second in chosen[index + 1:]:
            reason = CONFLICTS.get(frozenset({first, second}))
            if reason:
                raise ConfigError(f'{name(first)} and {name(second)} cannot be composed: {reason}')
    return _composed(tuple(sorted(chosen, key=TECHNIQUE_ORDER.index))) if chosen else ValidatedDARTS


@cache
def _composed(bases: tuple[type[ValidatedDARTS], ...]) -> type[ValidatedDARTS]:
    """The class with ``bases`` (in technique order), made once and kept in this module, so that
    the same composition is the same class and pickles by name."""
    if len(bases) == 1:
        return bases[0]
    name = '_'.join(base.__name__ for base in bases)
    composed = type(name, bases, {
        '__module__': __name__,
        '__doc__': 'The composition of ' + ', '.join(base.__name__ for base in bases) + ' (see combine).',
    })
    globals()[name] = composed
    return composed
