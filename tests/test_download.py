"""Dataset download: the offline message, resume-safe fetch and safe extraction, no network."""

from __future__ import annotations

import io
import socket
import tarfile
from pathlib import Path

import pytest

from pix2pix.data.download import DATASETS, download_dataset
from pix2pix.errors import UserError


def make_archive(path: Path, top: str = "facades") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name in (f"{top}/train/1.jpg", f"{top}/test/1.jpg"):
            data = b"fake image bytes"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_published_datasets_are_known() -> None:
    assert set(DATASETS) == {
        "facades",
        "cityscapes",
        "maps",
        "edges2shoes",
        "edges2handbags",
        "night2day",
    }
    assert all(url.endswith(f"/{name}.tar.gz") for name, url in DATASETS.items())


def test_offline_gives_a_clear_message(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/facades.tar.gz"
    with pytest.raises(UserError, match=r"cannot download .* --archive FILE"):
        download_dataset("facades", tmp_path, url=url, timeout=5)
    assert not (tmp_path / "facades").exists()


def test_download_from_a_url_extracts(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "src.tar.gz")
    target = download_dataset("facades", tmp_path / "out", url=archive.as_uri())
    assert (target / "train" / "1.jpg").read_bytes() == b"fake image bytes"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["facades"]


def test_local_archive_and_reuse(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "maps.tar.gz", top="maps")
    target = download_dataset("maps", tmp_path / "out", archive=archive)
    assert (target / "test" / "1.jpg").is_file()
    archive.unlink()
    assert download_dataset("maps", tmp_path / "out", archive=archive) == target  # kept


def test_unsafe_and_broken_archives_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UserError, match="evil.tar.gz"):
        download_dataset("facades", tmp_path / "out", archive=evil)
    assert not (tmp_path / "escaped.txt").exists()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(UserError, match="not a readable .tar.gz"):
        download_dataset("facades", tmp_path / "out2", archive=broken)


def test_unknown_name_lists_the_choices(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="choose one of: facades, cityscapes"):
        download_dataset("imagenet", tmp_path)
