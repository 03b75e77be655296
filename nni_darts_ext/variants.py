"""The registry: variant name -> strategy preset with its paper's defaults.

A variant is a strategy class plus the defaults its paper uses and the keyword options a user
may override (from Python, or as parameters of an nnictl experiment). Names joined with ``+``
(``pdarts+pcdarts+stabilized+ladarts``) compose the variants' techniques into one strategy
(:func:`~nni_darts_ext.composition.combine`), with the options of them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from nni.nas.strategy import Strategy

from .composition import TECHNIQUE_ORDER, combine
from .errors import ConfigError, choose
from .strategies.darts import NNIDARTS, ValidatedDARTS
from .strategies.ladarts import LatencyAwareDARTS
from .strategies.pcdarts import PCDARTS
from .strategies.pdarts import PDARTS
from .strategies.random_architecture import RandomArchitecture
from .strategies.scalable import ScalableDARTS
from .strategies.second_order import SecondOrderDARTS
from .strategies.stabilized import StabilizedDARTS


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
        Builds the strategy from keyword options.
    defaults
        The paper's settings, applied unless overridden.
    options
        The keyword options a user may set.
    sets_itself
        Options of other variants this one sets in its own way, so a composition with it does not
        take them (P-DARTS's stages carry their own warm-up).
    composable
        Whether its technique composes with others' (a baseline does not).
    """
    name: str
    summary: str
    factory: Callable[..., Strategy]
    defaults: dict[str, Any] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    sets_itself: tuple[str, ...] = ()
    composable: bool = True

    def build(self, **overrides: Any) -> Strategy:
        unknown = sorted(set(overrides) - set(self.options))
        if unknown:
            accepted = ', '.join(self.options) or 'none'
            raise ConfigError(f'variant {self.name!r} has no option {unknown[0]!r}; its options: {accepted}')
        return self.factory(**{**self.defaults, **overrides})


VARIANTS: dict[str, Variant] = {
    'darts': Variant(
        'darts', "NNI's first-order DARTS (Liu et al., ICLR 2019), validated every epoch",
        ValidatedDARTS,
        defaults={'arc_learning_rate': 3e-4, 'gradient_clip_val': 5.0},
        options=('arc_learning_rate', 'gradient_clip_val', 'warmup_epochs'),
    ),
    'nni-darts': Variant(
        'nni-darts', "NNI's own DARTS strategy, unchanged (its step, cells and export), validated every epoch: "
        'the yardstick',
        NNIDARTS,
        defaults={'arc_learning_rate': 3e-4, 'gradient_clip_val': 5.0},
        options=('arc_learning_rate', 'gradient_clip_val', 'warmup_epochs'),
        composable=False,
    ),
    'pcdarts': Variant(
        'pcdarts', 'PC-DARTS (Xu et al., ICLR 2020): partial-channel edges and edge normalization',
        PCDARTS,
        # the paper's CIFAR-10 search: K=4, Adam lr 6e-4, architecture frozen for 15 of 50 epochs
        defaults={'k': 4, 'arc_learning_rate': 6e-4, 'warmup_epochs': 15, 'gradient_clip_val': 5.0},
        options=('k', 'arc_learning_rate', 'gradient_clip_val', 'warmup_epochs'),
    ),
    'pdarts': Variant(
        'pdarts', 'P-DARTS (Chen et al., ICCV 2019): deeper stages over pruned operations, skip-connect control',
        PDARTS,
        # the paper's CIFAR-10 search (Adam lr 6e-4, at most 2 skip-connects), its 3 stages sharing the
        # evaluator's max_epochs in the paper's proportions (stages: paper, the paper's 3 x 25 epochs)
        defaults={'stages': 'budget', 'skip_limit': 2, 'arc_learning_rate': 6e-4, 'gradient_clip_val': 5.0},
        options=('stages', 'skip_limit', 'skip_dropout_decay', 'arc_learning_rate', 'gradient_clip_val'),
        sets_itself=('warmup_epochs',),
    ),
    'darts2': Variant(
        'darts2', 'second-order DARTS (Liu et al., ICLR 2019): the gradient through a virtual weight step',
        SecondOrderDARTS,
        defaults={'arc_learning_rate': 3e-4, 'gradient_clip_val': 5.0},
        options=('arc_learning_rate', 'gradient_clip_val', 'warmup_epochs', 'products'),
    ),
    'stabilized': Variant(
        'stabilized', 'Stabilized DARTS (Bi et al., arXiv 1910.11831): the amended architecture gradient',
        StabilizedDARTS,
        defaults={'eta': 0.1, 'arc_learning_rate': 3e-4, 'gradient_clip_val': 5.0},
        options=('eta', 'arc_learning_rate', 'gradient_clip_val', 'warmup_epochs', 'products'),
    ),
    'scalable': Variant(
        'scalable', 'Scalable-DARTS (Wang et al., arXiv 1912.13256): factorized parameters over activation x conv',
        ScalableDARTS,
        # DARTS's architecture optimizer; factors updated jointly (``alternate``: in turn, per step)
        defaults={'factor_updates': 'joint', 'arc_learning_rate': 3e-4, 'gradient_clip_val': 5.0},
        options=('factor_updates', 'arc_learning_rate', 'gradient_clip_val', 'warmup_epochs'),
    ),
    'ladarts': Variant(
        'ladarts', 'LA-DARTS (Xu et al., arXiv 2001.06392): a differentiable latency loss from measured latencies',
        LatencyAwareDARTS,
        # DARTS's architecture optimizer; lambda per predicted millisecond (see the README's LA-DARTS section)
        defaults={'latency_weight': 0.01, 'arc_learning_rate': 3e-4, 'gradient_clip_val': 5.0},
        options=('latency_weight', 'latency_target_ms', 'latency_predictor', 'latency_device', 'latency_batch',
                 'latency_warmup', 'latency_repeats', 'latency_threads', 'latency_samples', 'latency_cache',
                 'input_shape', 'arc_learning_rate', 'gradient_clip_val', 'warmup_epochs'),
    ),
    'random': Variant(
        'random', 'one uniformly random architecture of the same space, no search: the baseline',
        RandomArchitecture,
        options=('seed',),
        composable=False,
    ),
}


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
    two members' defaults differ, the first in :data:`~nni_darts_ext.composition.TECHNIQUE_ORDER`
    wins (P-DARTS's and PC-DARTS's architecture learning rate over Stabilized-DARTS's).

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
            error = choose('variant', part, VARIANTS)
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
    members.sort(key=lambda member: (*TECHNIQUE_ORDER, ValidatedDARTS).index(member.factory))
    set_itself = {option for member in members for option in member.sets_itself}
    options = tuple(dict.fromkeys(option for member in members for option in member.options
                                  if option not in set_itself))
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
