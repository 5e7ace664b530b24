"""The compile cache folder itself: a size cap kept by evicting the least recently used
package, and temporaries of dead builds removed while live ones are kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pix2pix.translate import aotcache
from pix2pix.translate.aot import cache_dir


def packages(folder: Path) -> set[Path]:
    return set(folder.glob("[0-9a-f]*.pt2"))


def fake_package(folder: Path, key: str, size: int) -> Path:
    tmp = folder / f".{key}.{aotcache.host_id()}-{os.getpid()}.x.tmp.pt2"
    tmp.write_bytes(b"\0" * size)
    aotcache.publish(tmp, folder / f"{key}.pt2", {"what": {}})
    return folder / f"{key}.pt2"


def test_the_cache_keeps_to_its_cap_evicting_the_least_recently_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path))
    folder = cache_dir()
    folder.mkdir()
    for text, size in [("", 2 * 2**30), ("500M", 500 * 2**20), ("3000", 3000), ("x", 2 * 2**30)]:
        monkeypatch.setenv("PIX2PIX_CACHE_MAX", text)
        assert aotcache.cache_max() == size
    monkeypatch.setenv("PIX2PIX_CACHE_MAX", "2500")
    a, b = fake_package(folder, "a" * 32, 1000), fake_package(folder, "b" * 32, 1000)
    os.utime(aotcache.sidecar_of(a), (1, 1))
    os.utime(aotcache.sidecar_of(b), (2, 2))
    assert aotcache.verified(a)  # a is used now: b is the least recently used
    (folder / "notes.txt").write_text("not ours")
    c = fake_package(folder, "c" * 32, 1000)
    aotcache.tidy(keep=c)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [a.name, aotcache.sidecar_of(a).name, c.name, aotcache.sidecar_of(c).name, "notes.txt"]
    )
    monkeypatch.setenv("PIX2PIX_CACHE_MAX", "10")
    aotcache.tidy(keep=c)  # over the cap on its own: the newest is kept
    assert packages(folder) == {c}


def test_temporaries_of_dead_builds_are_removed_and_live_ones_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path))
    folder = cache_dir()
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    host = aotcache.host_id()
    gone = folder / f".{'d' * 32}.{host}-{dead}.k2j3.tmp.pt2"
    live = folder / f".{'e' * 32}.{host}-{os.getpid()}.k2j3.tmp.pt2"
    for p in (gone, live):
        p.write_bytes(b"half")
    aotcache.tidy()
    assert not gone.exists() and live.exists()
