"""The folder of compiled generators (`pix2pix.translate.aot`): names, durability, size.

Each package `<key>.pt2` (or ONNX file `<key>.onnx`, `translate.onnxrt`) has a sidecar
`<key>.json` (`FORMAT`) with its size, SHA-256, what it was built for and the dropout
inputs it takes. The sidecar is written (and
fsynced) before the package is renamed into place, so a package with no sidecar, or one
whose size or digest differs from it, is damaged (a power cut, a partial copy): it is
deleted and rebuilt, never run. The sidecar's mtime is the package's last use; past
`PIX2PIX_CACHE_MAX` (default 2G) the least recently used packages are deleted.
Temporary files are named `.<key>.<host>-<pid>.*.tmp.*`, so those of dead builds are
recognised and removed. Only files recognised by name and content are ever deleted.

The key includes the CPU's instruction-set features (`isa_features`): inductor compiles
with -march=native, so a package built where AMX or AVX512-VNNI exists may execute an
illegal instruction on a CPU of the same model name without them (a VM, say).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import socket
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pix2pix.fileio import fsync_dir

log = logging.getLogger("pix2pix.translate.aot")

FORMAT = "pix2pix-aot-package"
DEFAULT_MAX = 2 * 2**30
UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
PACKAGE = re.compile(r"^[0-9a-f]{32}\.(pt2|onnx)$")
SUFFIXES = (".pt2", ".onnx")  # compiled packages; ONNX files of translate --backend onnxruntime
TEMPORARY = re.compile(
    r"^\.(?P<key>[0-9a-f]{32})\.(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.)?[^.]+\.tmp\.(pt2|onnx|json)$"
)
STALE_AGE = 24 * 3600  # a temporary file of another host (a shared folder) older than this
# /proc/cpuinfo flags that change the code a compiler may emit (x86); Arm lists only ISA
ISA_FLAG = re.compile(
    r"^(avx|amx|sse|ssse3|fma|f16c|bmi|abm|popcnt|movbe|adx|aes|vaes|pclmul|vpclmul|gfni|sha"
    r"|rdrand|rdseed|xsave|cx16|lahf|3dnow|prfchw|clflush|clwb|movdir|serialize|waitpkg"
    r"|cldemote|pku|rdpid|vnni|avx_vnni)"
)


def cache_dir() -> Path:
    root = os.environ.get("PIX2PIX_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pix2pix") / "aot"


def cache_max() -> int:
    """The cache's size cap in bytes: $PIX2PIX_CACHE_MAX (e.g. 2G, 500M, bytes), else 2G."""
    text = os.environ.get("PIX2PIX_CACHE_MAX", "").strip().upper().removesuffix("B")
    if not text:
        return DEFAULT_MAX
    try:
        value = float(text[:-1]) * UNITS[text[-1]] if text[-1] in UNITS else float(text)
        if value >= 0:
            return int(value)
    except ValueError:
        pass
    log.warning("PIX2PIX_CACHE_MAX=%s is not a size (e.g. 2G or 500M); using 2G", text)
    return DEFAULT_MAX


def isa_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The CPU's instruction-set extensions, read at run time (sorted flag names).

    From /proc/cpuinfo (x86 `flags`, filtered to ISA extensions; Arm `Features`); where
    there is none, torch's own probes of the extensions inductor generates code for."""
    try:
        for line in cpuinfo.read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() in ("flags", "Features"):
                flags = value.split()
                x86 = name.strip() == "flags"
                return sorted({f for f in flags if ISA_FLAG.match(f)} if x86 else set(flags))
    except OSError:
        pass
    import torch

    probes = [n for n in dir(torch._C._cpu) if n.startswith("_is_") and n.endswith("_supported")]
    return sorted(n[4:-10] for n in probes if getattr(torch._C._cpu, n)())


def host_id() -> str:
    return hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()


def machine() -> dict:
    return {"machine": platform.machine(), "isa": isa_features()}


def temporary(path: Path, suffix: str) -> Path:
    """A new temporary file beside `path` named for this host and process."""
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.{host_id()}-{os.getpid()}.", suffix=f".tmp{suffix}", dir=path.parent
    )
    os.close(fd)
    return Path(tmp)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sidecar_of(package: Path) -> Path:
    return package.with_suffix(".json")


def publish(tmp: Path, package: Path, info: dict) -> None:
    """Make the compiled `tmp` the package at `package`, durably: the file fsynced, its
    sidecar (`info` plus size and digest) written and fsynced, then the rename, then the
    folder fsynced. A crash at any point leaves no package that looks whole and is not."""
    fsync_file(tmp)
    record = {"format": FORMAT, **info, "size": tmp.stat().st_size, "sha256": sha256(tmp)}
    side = temporary(package, ".json")
    try:
        side.write_text(json.dumps(record, indent=1))
        fsync_file(side)
        os.replace(side, sidecar_of(package))
    finally:
        side.unlink(missing_ok=True)
    os.replace(tmp, package)
    fsync_dir(package.parent)


def read_sidecar(package: Path) -> dict | None:
    """The package's sidecar if it is ours (our format key), else None."""
    try:
        record = json.loads(sidecar_of(package).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def verified(package: Path) -> dict | None:
    """The sidecar of an intact package (size and SHA-256 as recorded), marked as used
    now; None when the package is damaged or has no sidecar of ours."""
    record = read_sidecar(package)
    try:
        if record is None or package.stat().st_size != record["size"]:
            return None
        if sha256(package) != record["sha256"]:
            return None
        os.utime(sidecar_of(package))  # last use, for the eviction order
    except (OSError, KeyError):
        return None
    return record


def remove(package: Path) -> None:
    """Delete a package of ours and its sidecar."""
    package.unlink(missing_ok=True)
    sidecar_of(package).unlink(missing_ok=True)


@dataclass(frozen=True)
class Entry:
    """One package of ours in the cache folder."""

    path: Path
    size: int
    last_used: float  # seconds since the epoch
    info: dict  # the sidecar ({} for a package of an older version, which had none)


def _legacy(path: Path) -> bool:
    """A package an older version wrote (no sidecar): an AOTInductor zip by its content."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/data/aotinductor/" in name for name in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def entries(folder: Path | None = None) -> list[Entry]:
    """Our packages, least recently used first (with orphan sidecars, size 0)."""
    folder = folder or cache_dir()
    found = []
    for p in sorted(folder.iterdir()) if folder.is_dir() else ():
        stem, suffix = p.stem, p.suffix
        if not PACKAGE.match(stem + ".pt2") or suffix not in (*SUFFIXES, ".json"):
            continue
        info = read_sidecar(p)
        try:
            orphan = not any(p.with_suffix(s).exists() for s in SUFFIXES)
            if suffix == ".json" and info is not None and orphan:
                found.append(Entry(p, 0, p.stat().st_mtime, info))
            elif suffix in SUFFIXES and (info is not None or (suffix == ".pt2" and _legacy(p))):
                used = sidecar_of(p).stat().st_mtime if info else p.stat().st_mtime
                found.append(Entry(p, p.stat().st_size, used, info or {}))
        except OSError:  # removed meanwhile by another process
            continue
    return sorted(found, key=lambda e: e.last_used)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_temporaries(folder: Path | None = None) -> list[Path]:
    """Temporary files of builds that died: of this host and a process that is gone, or
    older than a day."""
    folder = folder or cache_dir()
    stale = []
    for p in folder.iterdir() if folder.is_dir() else ():
        m = TEMPORARY.match(p.name)
        if not m:
            continue
        try:
            age = time.time() - p.stat().st_mtime
        except OSError:
            continue
        mine = m["host"] == host_id()
        if (mine and not _alive(int(m["pid"]))) or age > (STALE_AGE if m["pid"] else 3600):
            stale.append(p)
    return stale


def tidy(keep: Path | None = None) -> None:
    """Delete stale temporaries, then the least recently used packages until the cache
    is within `cache_max()` (never `keep`, the package just built)."""
    for p in stale_temporaries():
        p.unlink(missing_ok=True)
    listed = entries()
    total, cap = sum(e.size for e in listed), cache_max()
    for e in listed:
        if total <= cap:
            break
        if e.path == keep:
            continue
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        log.info(
            "compile cache over %.0f MB: removing %s (last used %s)", cap / 2**20, e.path.name, used
        )
        remove(e.path)
        total -= e.size


def clear(folder: Path | None = None) -> tuple[int, int]:
    """Delete our packages, sidecars and stale temporaries; (files deleted, bytes freed).
    Nothing else in the folder is touched."""
    folder = folder or cache_dir()
    count = freed = 0
    for e in entries(folder):
        remove(e.path)
        count, freed = count + 1, freed + e.size
    for p in stale_temporaries(folder):
        freed += p.stat().st_size
        p.unlink(missing_ok=True)
        count += 1
    return count, freed
