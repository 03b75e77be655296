"""Writing a file whole: a process killed while writing leaves the previous version, never half a file;
and a directory held by one process at a time."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ConfigError

_logger = logging.getLogger(__name__)

PARTIAL = '.partial-'
"""How the name of a file being written starts: ``.partial-PID-NAME``."""


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write`` on a path beside ``path`` (same suffix, so writers that read it choose the same
    format; this process's id, so concurrent writers do not collide), then move the result there.
    An ``OSError`` of the write (a full disk) names ``path``."""
    path = Path(path)
    partial = path.with_name(f'{PARTIAL}{os.getpid()}-{path.name}')
    try:
        write(partial)
    except BaseException as err:
        partial.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None and err.filename is None:  # write() names no file
            raise OSError(err.errno, err.strerror, str(path)) from err
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


LOCK = '.lock'
"""The file in a directory that :func:`held` locks; it holds the id of the process that holds it."""


@contextlib.contextmanager
def held(directory: Path, name: str) -> Iterator[None]:
    """Hold ``directory`` for the block, or refuse at once, naming the setting ``name``, where another
    process holds it: two writers would overwrite each other's files.

    The lock is ``flock`` on the open :data:`LOCK` file, so the kernel releases it when the holder
    exits or is killed: a dead process never holds a directory. A directory created here that the
    block left empty is removed again: a trial that failed leaves no output directory behind.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True)
        created = True
    except FileExistsError:
        created = False
    with open(directory / LOCK, 'a+') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            raise ConfigError(f'{name} {directory} is in use by another trial (process {holder or "unknown"}); '
                              f'accepted: an {name} no running trial writes to') from None
        lock.truncate(0)
        lock.write(f'{os.getpid()}\n')
        lock.flush()
        try:
            yield
        finally:
            if created and [entry.name for entry in directory.iterdir()] == [LOCK]:
                with contextlib.suppress(OSError):  # another process may be starting in it
                    (directory / LOCK).unlink()
                    directory.rmdir()


def _is_running(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 only checks; another user's process refuses it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
