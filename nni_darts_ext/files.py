"""Writing a file whole: a process killed while writing leaves the previous version, never half a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable


def write_whole(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write`` on a path beside ``path`` (same suffix, so writers that read it choose the same
    format; this process's id, so concurrent writers do not collide), then move the result there."""
    path = Path(path)
    partial = path.with_name(f'.partial-{os.getpid()}-{path.name}')
    write(partial)
    os.replace(partial, path)
