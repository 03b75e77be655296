"""The one error type a user sees for bad input: one line naming the problem and the accepted values."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Iterable


class ConfigError(ValueError):
    """Bad user input: an unknown name, a malformed file, an impossible value, missing data."""


def unknown_value(kind: str, value: object, accepted: Iterable[object]) -> ConfigError:
    """The error for a value outside a closed set, listing the accepted values."""
    listed = ', '.join(str(a) for a in sorted(accepted, key=str))
    return ConfigError(f'unknown {kind} {value!r}; accepted: {listed}')


def check_number(name: str, value: object, *, integer: bool = False, minimum: float = 0, strict: bool = False,
                 optional: bool = False) -> None:
    """Refuse ``value`` unless it is a finite number (an integer with ``integer``; also ``None`` with
    ``optional``) of at least ``minimum`` (above it with ``strict``)."""
    if optional and value is None:
        return
    kinds = (int,) if integer else (int, float)
    number = not isinstance(value, bool) and isinstance(value, kinds)
    if number and math.isfinite(value) and (value > minimum if strict else value >= minimum):
        return
    kind = 'integer' if integer else ('finite number' if number and not math.isfinite(value) else 'number')
    if minimum == 0:
        wanted = f'a {"positive" if strict else "non-negative"} {kind}'
    else:
        wanted = f'{"an" if integer else "a"} {kind} {"above" if strict else "of at least"} {minimum:g}'
    raise ConfigError(f'{name} must be {wanted}{" or null" if optional else ""}, got {value!r}')


def check_directory(name: str, path: object, *, written: bool = True) -> None:
    """Refuse, before any work, a ``path`` that cannot become a directory: not a path, a file or
    under one, a name the file system refuses (too long); with ``written`` (the caller will write
    files there), also one this user cannot create or write in (read-only, under ``/proc``).

    Writing is tried, by creating and removing a file in the directory or in the nearest existing
    folder above it: ``os.access`` answers yes to root even on a read-only or virtual file system."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f'{name} must be a path, got {path!r}')
    path = Path(path).expanduser()
    for candidate in (path, *path.parents):
        try:
            exists = candidate.exists()
        except OSError as err:  # a name too long, a folder this user may not enter
            raise ConfigError(f'{name} {path} cannot be a directory ({err.strerror}); accepted: a path of '
                              'short enough names, in folders you can enter') from None
        if exists:
            break
    if not candidate.is_dir():
        raise ConfigError(f'{name} {path} cannot be a directory: {candidate} is a file')
    if written:
        try:
            with tempfile.NamedTemporaryFile(dir=candidate, prefix='.writable-'):
                pass
        except OSError as err:
            created = '' if candidate == path else f' (it would be created in {candidate})'
            raise ConfigError(f'{name} {path} cannot be written{created}: {err.strerror}; accepted: a directory '
                              'this user can create and write') from None
