"""One writer per output folder: a lock that the operating system releases when its holder dies.

`folder_lock(path)` takes an exclusive POSIX record lock (`fcntl.lockf`, i.e. F_SETLK) on
a small lock file and holds it until the block ends. A second process asking for the same
lock is refused at once (never queued) with a `FolderLocked` error naming the folder and
the holder (pid, host, command, start time, which the holder writes into the lock file).

Why this lock, and how it fails safe:

- The kernel drops the lock when the holder's last descriptor closes, which happens
  however the process ends (exit, exception, SIGKILL, OOM killer). A lock file left
  behind by a killed process is therefore never a held lock: the next run takes it.
  No pid files, no timeouts, no "remove the stale lock" step.
- POSIX record locks are the ones network filesystems implement: NFSv3 through the
  lock manager (lockd/NLM), NFSv4 in the protocol itself (with leases), SMB/CIFS and
  most cluster filesystems (Lustre with `-o flock`, GPFS, BeeGFS) too. On Linux, flock()
  on NFS is itself emulated with these. If the machine holding the lock loses power,
  an NFSv4 server frees it when the client's lease expires (90 s by default); NFSv3
  frees it when that client reboots.
- Where the filesystem cannot lock at all (ENOLCK, ENOSYS, EOPNOTSUPP: e.g. Lustre
  mounted without flock), the command is not blocked: it warns once that it runs
  unlocked and goes on, as before this lock existed.

The lock file is removed when the holder releases it; a process that opened the old
file just before that notices (its file is no longer the one at the path) and retries,
so two holders can never both believe they hold the lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from pix2pix.errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no POSIX locks; commands run unlocked, with a warning
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_NAME = ".pix2pix.lock"
_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
_BUSY = {errno.EACCES, errno.EAGAIN}
# POSIX locks belong to the process: a second lock of the same file by this process would
# succeed, and closing it would drop the first. Locks held here are refused by name.
_held: set[str] = set()


class FolderLocked(UserError):
    """Another live process holds the folder's lock."""


def _holder(lock_file: Path) -> str:
    """Who holds the lock, as its holder wrote it (best effort: the file may be mid-write)."""
    try:
        info = json.loads(lock_file.read_text())
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"]))
        return f"pid {info['pid']} on {info['host']} ({info['command']}, since {started})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _record() -> bytes:
    command = " ".join(["pix2pix", *sys.argv[1:3]]) if sys.argv else "python"
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "started": time.time(),
    }
    return (json.dumps(info) + "\n").encode()


@contextlib.contextmanager
def folder_lock(lock_file: Path, what: str) -> Iterator[None]:
    """Hold the exclusive lock `lock_file` (created if missing) for the block.

    `what` names the guarded thing in the refusal ("run folder runs/a"). Raises
    FolderLocked at once when another live process holds it.
    """
    lock_file = Path(lock_file)
    key = os.path.realpath(lock_file)
    if key in _held:
        raise FolderLocked(f"{what} is already being written by this process")
    if fcntl is None:
        log.warning(
            "%s: no file locks on this platform; make sure no other process writes here", lock_file
        )
        yield
        return
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            failure = 0
        except OSError as exc:
            os.close(fd)
            if exc.errno not in _BUSY | _UNSUPPORTED:
                raise
            failure = exc.errno
        if failure in _BUSY:
            raise FolderLocked(
                f"{what} is in use by {_holder(lock_file)}; wait for it to finish or "
                "stop it (a killed process holds no lock), or choose another --out"
            )
        if failure:
            log.warning(
                "%s: this filesystem cannot lock files (%s); running without a "
                "lock: make sure no other process writes here",
                lock_file,
                os.strerror(failure),
            )
            with contextlib.suppress(OSError):
                lock_file.unlink()
            yield
            return
        # the holder we waited on may have removed the file between our open and lock
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_file))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    _held.add(key)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, _record())
        yield
    finally:
        _held.discard(key)
        with contextlib.suppress(OSError):
            lock_file.unlink()  # still holding the lock: nobody can take this file now
        os.close(fd)


def sibling_lock(folder: Path) -> Path:
    """The lock file for a folder that is replaced as a whole: `.NAME.lock` beside it,
    beside the real folder (symlinks resolved), so that every spelling of the folder, a
    link to it included, takes the same lock. Its writer replaces that real folder too
    (`Path.resolve()`), leaving a user's link in place."""
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name}.lock"
