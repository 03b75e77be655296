"""Writing a file whole: a process killed while writing leaves the previous version, never half a file."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

_logger = logging.getLogger(__name__)

PARTIAL = '.partial-'
"""How the name of a file being written starts: ``.partial-PID-NAME``."""


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write`` on a path beside ``path`` (same suffix, so writers that read it choose the same
    format; this process's id, so concurrent writers do not collide), then move the result there."""
    path = Path(path)
    partial = path.with_name(f'{PARTIAL}{os.getpid()}-{path.name}')
    try:
        write(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def remove_partial_files(directory: Path) -> None:
    """Delete the half-written files that writers killed mid-write left in ``directory`` (logged);
    those of a process still running stay, as it may still be writing them."""
    for partial in sorted(Path(directory).glob(PARTIAL + '*')):
        writer = partial.name[len(PARTIAL):].partition('-')[0]
        if writer.isdigit() and _is_running(int(writer)):
            continue
        partial.unlink(missing_ok=True)
        _logger.info('removed %s, left by a write that was interrupted', partial)


def _is_running(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 only checks; another user's process refuses it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
