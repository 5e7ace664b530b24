"""Crash-safe file writes: a kill at any instant leaves either the old file or the new one."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from pix2pix.errors import UserError, setting


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """A temp name beside `path` to write to; renamed over `path` only if the block succeeds.

    For outputs that must be checked before they count (an exported model is run and
    compared first): on any exception the temp file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # umask applies
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def replace_folder(path: Path, files: dict[str, bytes]) -> Path:
    """Write `files` (name -> bytes) as the folder `path`, replacing any previous one.

    The new folder is written complete beside the old one, then swapped in by renames;
    a kill at any instant leaves the old folder or the new one (the old one possibly as
    `.NAME.old` while the swap is half done; the next call finishes it).
    """
    with staged_folder(path) as tmp:
        for name, data in files.items():
            atomic_write_bytes(tmp / name, data)
    return Path(path)


@contextlib.contextmanager
def staged_folder(path: Path) -> Iterator[Path]:
    """A temp folder beside `path` to fill; swapped in for `path` only if the block succeeds.

    The swap is two renames (the old folder to `.NAME.old`, the new one into place); a
    kill at any instant leaves the old folder or the new one, and the next call finishes
    a half-done swap. On an exception the temp folder is removed and `path` is untouched.
    Callers decide first whether `path` may be replaced (`check_replaceable`).
    """
    path = Path(path)
    tmp, old = path.parent / f".{path.name}.tmp", path.parent / f".{path.name}.old"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() and old.exists():
        os.replace(old, path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def check_replaceable(
    path: Path, what: str, is_ours: Callable[[Path], bool], *, overwrite: bool
) -> None:
    """Refuse to write `what` (e.g. "a segmenter") as the folder `path` unless that loses
    nothing: `path` is absent or empty, or holds an earlier `what` (`is_ours`) and
    `overwrite` is set. Anything else is a UserError naming the folder and the fix."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise UserError(f"{path}: is a file, not a folder; choose another {setting('--out')}")
    if not any(path.iterdir()):
        return
    if not is_ours(path):
        raise UserError(
            f"{path}: is not empty and does not hold {what}; nothing was changed. "
            f"Choose a new or empty {setting('--out')} folder"
        )
    if not overwrite:
        raise UserError(
            f"{path}: already holds {what}; pass {setting('--overwrite')} to replace it, or choose "
            f"another {setting('--out')}"
        )


def first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` that does not exist yet (None: `path` exists), i.e.
    the folder that `path.mkdir(parents=True)` creates first."""
    path = Path(path).absolute()
    missing = None
    while not path.exists():
        missing, path = path, path.parent
    return missing


def remove_if_empty(path: Path, top: Path | None = None) -> None:
    """Remove the folder `path` if it is empty, then its empty parents up to `top`: what a
    failed command made (`top` from `first_missing` before it made them)."""
    path = Path(path).absolute()
    top = Path(top).absolute() if top is not None else path
    while True:
        try:
            path.rmdir()  # only succeeds on an empty folder
        except OSError:
            return
        if path == top or top not in path.parents:
            return
        path = path.parent


def check_outputs(
    out_dir: Path, targets: list[tuple[Path, tuple[Path, ...]]], overwrite: bool
) -> None:
    """Refuse, before anything is written, outputs (output file, its input files) that
    would replace an input (always) or another existing file (unless `overwrite`), and an
    `out_dir` that is a file."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: is a file; {setting('--out')} takes a folder for the outputs")
    if not out_dir.is_dir():
        return
    inputs = {os.path.realpath(f) for _, files in targets for f in files}
    existing = []
    for target, files in targets:
        if os.path.realpath(target) in inputs or any(
            target.exists() and os.path.samefile(target, f) for f in files
        ):
            raise UserError(
                f"{target}: the output would overwrite the input {files[0]}; "
                f"choose another {setting('--out')} folder"
            )
        if target.exists():
            existing.append(target)
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise UserError(
            f"{existing[0]}{more} already exist(s); pass {setting('--overwrite')} to replace them, "
            f"or choose another {setting('--out')} folder"
        )
