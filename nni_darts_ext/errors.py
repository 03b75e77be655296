"""The one error type a user sees for bad input: one line naming the problem and the accepted values."""

from __future__ import annotations

from typing import Iterable


class ConfigError(ValueError):
    """Bad user input: an unknown name, a malformed file, an impossible value, missing data."""


def choose(kind: str, value: object, accepted: Iterable[object]) -> ConfigError:
    """The error for a value outside a closed set, listing the accepted values."""
    listed = ', '.join(str(a) for a in sorted(accepted, key=str))
    return ConfigError(f'unknown {kind} {value!r}; accepted: {listed}')
