"""The public pix2pix datasets, fetched from the URLs the paper's authors published.

Downloads resume where they stopped (HTTP Range) and are extracted only when complete:
the size must match the server's Content-Length and, when given, the archive's SHA-256
must match `sha256` (the digest of each download is logged, so it can be pinned for the
next machine). No digests are built in: they could not be verified from here. Offline,
the error says so and how to use an archive fetched by other means.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from pix2pix.errors import UserError, setting

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
DATASETS: dict[str, str] = {
    name: f"{BASE_URL}/{name}.tar.gz"
    for name in ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")
}
CHUNK = 1 << 20

log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(archive: Path, sha256: str | None, downloaded: bool) -> None:
    """Check the archive's digest; a bad download is deleted so that a rerun fetches anew."""
    got = file_sha256(archive)
    log.info("%s: sha256 %s", archive, got)
    if sha256 is None or got == sha256.lower():
        return
    if downloaded:
        archive.unlink()
        fix = f"the file was deleted: run the same command again, or check {setting('--sha256')}"
    else:
        fix = "the archive is damaged or not the one meant; fetch it again"
        fix += f" or check {setting('--sha256')}"
    raise UserError(f"{archive}: SHA-256 {got} differs from the expected {sha256}; {fix}")


def _fetch(url: str, part: Path, timeout: float, progress: bool = True) -> None:
    """Download `url` into `part`, continuing a partial file if the server allows it."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range not satisfiable: the file is already complete
            return
        raise
    with response:
        if have and response.status != 206:  # server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else None
        with (
            part.open("ab" if have else "wb") as f,
            tqdm(
                total=total, initial=have, unit="B", unit_scale=True, disable=not progress or None
            ) as bar,
        ):
            while chunk := response.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    if total is not None and part.stat().st_size != total:
        raise UserError(f"{url}: download stopped early; run the same command again to resume")


def _extract(archive: Path, out_dir: Path, name: str) -> Path:
    """Extract a .tar.gz safely (no paths outside `out_dir`) into out_dir/name."""
    tmp = out_dir / f".{name}.extracting"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python without extraction filters: refuse unsafe members ourselves
                for member in tar.getmembers():
                    target = (tmp / member.name).resolve()
                    if not target.is_relative_to(tmp.resolve()) or member.issym() or member.islnk():
                        raise UserError(f"{archive}: unsafe path {member.name} in the archive")
                tar.extractall(tmp)
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(
            f"{archive}: not a readable .tar.gz ({exc}); delete it and download again"
        ) from None
    # the archives hold one top folder named after the dataset; accept a flat one too
    entries = list(tmp.iterdir())
    source = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
    target = out_dir / name
    source.rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def download_dataset(
    name: str,
    out_dir: str | Path = "datasets",
    *,
    url: str | None = None,
    archive: str | Path | None = None,
    sha256: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Fetch and extract dataset `name` into out_dir/name (kept if already there); a
    progress bar on a terminal unless `progress` is off.

    `archive` extracts a .tar.gz you already have instead of downloading. `sha256` (hex)
    is checked against the archive before extraction.
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise UserError(
            f"{setting('--sha256')} {sha256!r} is not a SHA-256 digest; give 64 hex digits"
        )
    out_dir = Path(out_dir)
    target = out_dir / name
    if target.is_dir() and any(target.iterdir()):
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    if archive is not None:
        archive = Path(archive)
        if not archive.is_file():
            raise UserError(f"{archive}: archive not found; check {setting('--archive')}")
        _verify(archive, sha256, downloaded=False)
        return _extract(archive, out_dir, name)
    url = url or DATASETS[name]
    part, done = out_dir / f"{name}.tar.gz.part", out_dir / f"{name}.tar.gz"
    if done.exists():  # a file of the user's: the download would replace, then delete it
        raise UserError(
            f"{done}: already exists; extract it with {setting('--archive')} {done}, or move it "
            "away"
        )
    try:
        _fetch(url, part, timeout, progress)
    except http.client.IncompleteRead:  # the connection closed inside the body
        raise UserError(
            f"{url}: download stopped early (the connection closed mid-file); run the same "
            "command again to resume"
        ) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise UserError(
            f"cannot download {url} ({reason}); check your network, or fetch the file "
            f"elsewhere and run: pix2pix data download {name} {setting('--archive')} FILE"
        ) from None
    part.replace(done)
    _verify(done, sha256, downloaded=True)
    target = _extract(done, out_dir, name)
    done.unlink()
    return target
