"""The trial's parameters: defaults, types, ranges, and how they merge.

Precedence: the dataclass defaults, then the command-line flags, then ``--option`` s, then the
chosen variant's ``--variant-settings``, then the parameters NNI's tuner sends. Keys that are
not trial parameters are the chosen variant's options (e.g. ``arc_learning_rate``); the
variant rejects the ones it does not have.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import yaml

from .collapse import check_early_stop
from .errors import ConfigError, unknown_value
from .variants import find_variant, variant_name
from .yaml_reading import load_yaml

ACCELERATORS = ('auto', 'cpu', 'gpu', 'cuda')


@dataclass(frozen=True)
class TrialConfig:
    """Everything a trial needs besides the variant's own options (defaults: the CPU quick start)."""
    variant: str = 'darts'
    seed: int = 0
    space: str = 'darts_small'
    dataset: str = 'digits'
    data_dir: str | None = None
    train_subset: int | None = None
    test_subset: int | None = None
    image_size: int | None = None
    search_subset: int | None = None
    batch_size: int = 64
    search_epochs: int = 4
    search_width: int | None = None
    search_cells: int | None = None
    arc_travel: float | None = None
    eigenvalue_batches: int = 0
    early_stop: str = 'none'
    learning_rate: float = 0.025
    min_learning_rate: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    retrain_epochs: int = 10
    retrain_width: int | None = None
    retrain_cells: int | None = None
    retrain_batch_size: int | None = None
    retrain_learning_rate: float = 0.025
    retrain_gradient_clip: float = 5.0
    retrain_cutout: int = 0
    retrain_drop_path: float = 0.0
    retrain_auxiliary_weight: float = 0.0
    accelerator: str = 'auto'
    devices: int = 1
    threads: int | None = None
    num_workers: int = 0
    channels_last: bool = False
    output_dir: str | None = None
    nb201_table: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        for name in FIELDS:
            _check_type(name, getattr(self, name))
        object.__setattr__(self, 'variant', variant_name(self.variant))  # one variant, one name in every report
        positive = ('batch_size', 'search_epochs', 'devices', 'train_subset', 'test_subset',
                    'image_size', 'search_subset', 'search_width', 'search_cells', 'retrain_width', 'retrain_cells',
                    'retrain_batch_size', 'threads')
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f'{name} must be at least 1, got {value}')
        for name in ('learning_rate', 'retrain_learning_rate'):
            if getattr(self, name) <= 0:
                raise ConfigError(f'{name} must be positive, got {getattr(self, name)}')
        for name in ('min_learning_rate', 'weight_decay', 'retrain_gradient_clip', 'num_workers', 'eigenvalue_batches',
                     'retrain_epochs'):
            if getattr(self, name) < 0:
                raise ConfigError(f'{name} must not be negative, got {getattr(self, name)}')
        if self.arc_travel is not None and self.arc_travel <= 0:
            raise ConfigError(f'arc_travel must be positive (or null: each variant its own arc_learning_rate), '
                              f'got {self.arc_travel}')
        if not 0 <= self.seed < 2 ** 32:
            raise ConfigError(f'seed must be in [0, 2**32), got {self.seed}')
        if not 0 <= self.momentum < 1:
            raise ConfigError(f'momentum must be in [0, 1), got {self.momentum}')
        if self.min_learning_rate > self.learning_rate:
            raise ConfigError(f'min_learning_rate ({self.min_learning_rate}) exceeds learning_rate ({self.learning_rate})')
        if self.accelerator not in ACCELERATORS:
            raise unknown_value('accelerator', self.accelerator, ACCELERATORS)
        check_early_stop(self.early_stop, self.eigenvalue_batches)
        self._check_retraining_protocol()

    def _check_retraining_protocol(self) -> None:
        """Cutout's square, drop-path's rate and the auxiliary loss's weight (0 turns each off), and a
        batch the auxiliary head can train on; the cutout is checked against the images' size again
        once they are loaded."""
        if self.retrain_cutout < 0:
            raise ConfigError('retrain_cutout must be a non-negative number of pixels (0: off), '
                              f'got {self.retrain_cutout}')
        if self.image_size is not None and self.retrain_cutout >= self.image_size:
            raise ConfigError(f'retrain_cutout must be below image_size ({self.image_size} pixels), '
                              f'got {self.retrain_cutout}')
        if not 0 <= self.retrain_drop_path < 1:
            raise ConfigError(f'retrain_drop_path must be in [0, 1) (0: off), got {self.retrain_drop_path}')
        if self.retrain_auxiliary_weight < 0:
            raise ConfigError(f'retrain_auxiliary_weight must be non-negative (0: off), got {self.retrain_auxiliary_weight}')
        batch_size = self.retrain_batch_size or self.batch_size
        if self.retrain_auxiliary_weight and self.retrain_epochs and batch_size < 2:
            # the head's last batch norm sees one value per channel and image: one image cannot be normalized
            raise ConfigError(f'retrain_batch_size (batch_size where unset) must be at least 2 with '
                              f'retrain_auxiliary_weight, whose head normalizes over the batch; got {batch_size}')


FIELDS = {f.name: f for f in dataclasses.fields(TrialConfig)}
BOOLEANS = {'true': True, 'yes': True, 'false': False, 'no': False}
HINTS = typing.get_type_hints(TrialConfig)


def _base_type(name: str) -> type:
    """``int`` for ``int`` and for ``int | None``."""
    args = [a for a in typing.get_args(HINTS[name]) if a is not type(None)]
    return args[0] if args else HINTS[name]


def _check_type(name: str, value: Any) -> None:
    expected = _base_type(name)
    if value is None:
        if not typing.get_args(HINTS[name]):
            raise ConfigError(f'{name} must be of type {expected.__name__}, got None')
        return
    numbers = (int, float) if expected is float else (expected,)
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, numbers):
        raise ConfigError(f'{name} must be of type {expected.__name__}, got {value!r} ({type(value).__name__})')
    if expected is float and not math.isfinite(value):
        raise ConfigError(f'{name} must be a finite number, got {value!r}')


def split_parameters(parameters: Mapping[str, Any]) -> tuple[TrialConfig, dict[str, Any]]:
    """Trial parameters into a validated :class:`TrialConfig`; the rest are variant options."""
    trial = {k: v for k, v in parameters.items() if k in FIELDS}
    if isinstance(trial.get('learning_rate'), (int, float)) and 'min_learning_rate' not in trial:
        trial['min_learning_rate'] = min(FIELDS['min_learning_rate'].default, trial['learning_rate'])
    options = {k: v for k, v in parameters.items() if k not in FIELDS}
    return TrialConfig(**trial), options


def command_line() -> argparse.ArgumentParser:
    """``--search-epochs 2`` style flags for every trial parameter, ``--option KEY=VALUE`` for variant options."""
    parser = argparse.ArgumentParser(
        prog='python -m nni_darts_ext.trial',
        description='One NAS trial: search with a variant, retrain the found architecture, test it, report. '
                    "Under nnictl, the tuner's parameters override these flags.")
    for name, f in FIELDS.items():
        parser.add_argument('--' + name.replace('_', '-'), dest=name, type=_parse_flag(name),
                            default=argparse.SUPPRESS, help=f'default: {f.default}')
    parser.add_argument('--option', action='append', default=[], metavar='KEY=VALUE',
                        help="a variant option, e.g. --option arc_learning_rate=6e-4 (value read as YAML)")
    parser.add_argument('--variant-settings', default='{}', metavar='YAML',
                        help='parameters that apply only when a given variant runs, '
                             "e.g. '{pcdarts: {k: 2, batch_size: 256}}'")
    return parser


def merge_parameters(flags: Mapping[str, Any], options: Mapping[str, Any], variant_settings: str,
                     tuned: Mapping[str, Any]) -> dict[str, Any]:
    """Flags, then ``--option`` s, then the chosen variant's settings, then the tuner's parameters."""
    settings = check_variant_settings(variant_settings, flags)
    variant = variant_name(tuned.get('variant', flags.get('variant', FIELDS['variant'].default)))
    return {**flags, **options, **settings.get(variant, {}), **tuned}


def check_variant_settings(variant_settings: str, flags: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``--variant-settings`` read and checked entry by entry, whichever variant this trial runs
    (a typo for another variant would otherwise fail only in a later trial of a grid): each name
    a variant, each parameter a trial parameter or one of that variant's options, each value
    valid with the flags. Keyed by :func:`~nni_darts_ext.variants.variant_name`."""
    try:
        settings = load_yaml(variant_settings)
    except yaml.YAMLError:
        settings = None
    if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
        raise ConfigError(f'--variant-settings must map variant names to mappings of parameters, got {variant_settings!r}')
    checked, spelled = {}, {}
    for name, parameters in settings.items():
        try:
            variant = find_variant(name)
        except ConfigError as err:
            raise ConfigError(f'--variant-settings: {err}') from None
        if variant.name in spelled:
            raise ConfigError(f'--variant-settings: {spelled[variant.name]!r} and {name!r} are one variant, '
                              f'{variant.name}; give its settings once')
        spelled[variant.name] = name
        _check_parameter_names(name, parameters, variant.options)
        try:
            _, options = split_parameters({**flags, **parameters, 'variant': variant.name})
            variant.build(**options)
        except ConfigError as err:
            raise ConfigError(f'--variant-settings: {name}: {err}') from None
        checked[variant.name] = parameters
    return checked


def _check_parameter_names(name: str, parameters: Mapping[Any, Any], options: Iterable[str]) -> None:
    """Refuse a ``--variant-settings`` entry ``name`` whose parameters are not named by strings (they
    become keyword arguments) or that names ``variant``, which chose the entry: it would run another."""
    for key in parameters:
        if key == 'variant':
            raise ConfigError(f'--variant-settings: {name}: variant cannot be set in an entry for a variant; '
                              'give variant as a flag or in the search space')
        if not isinstance(key, str):
            raise ConfigError(f'--variant-settings: {name}: parameter names must be strings, got {key!r}; accepted: '
                              f'the trial parameters and {", ".join(sorted(options)) or "no options"}')


def _parse_flag(name: str):
    expected = _base_type(name)

    def parse(text: str) -> Any:
        if text.lower() in ('none', 'null'):
            return None
        if expected is bool:
            if text.lower() in BOOLEANS:
                return BOOLEANS[text.lower()]
        else:
            with suppress(ValueError):
                return expected(text)
        raise argparse.ArgumentTypeError(f'{name} must be of type {expected.__name__}, got {text!r}')
    return parse


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings into a dict, values read as YAML scalars."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition('=')
        if not sep or not key:
            raise ConfigError(f'--option expects KEY=VALUE, got {pair!r}')
        try:
            options[key] = load_yaml(value)
        except yaml.YAMLError as err:
            raise ConfigError(f'--option {key}: {value!r} is not valid YAML ({" ".join(str(err).split())})') from None
    return options
