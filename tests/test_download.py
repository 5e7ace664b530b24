"""Dataset download: the offline message, resume-safe fetch and safe extraction, no network."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from pix2pix.data.tools.download import DATASETS, download_dataset, file_sha256
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
    with pytest.raises(UserError, match=r"cannot download .* archive FILE"):
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


def test_sha256_is_checked_before_extraction(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "facades.tar.gz")
    good = file_sha256(archive)
    assert good == hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(UserError, match=f"SHA-256 {good} differs from the expected {'0' * 64}"):
        download_dataset("facades", tmp_path / "out", archive=archive, sha256="0" * 64)
    assert archive.is_file() and not (tmp_path / "out" / "facades").exists()  # yours: kept
    target = download_dataset("facades", tmp_path / "out", archive=archive, sha256=good.upper())
    assert (target / "train" / "1.jpg").is_file()
    # a downloaded archive with the wrong digest is deleted, so a rerun starts afresh
    with pytest.raises(UserError, match="the file was deleted"):
        download_dataset("facades", tmp_path / "dl", url=archive.as_uri(), sha256="1" * 64)
    assert list((tmp_path / "dl").iterdir()) == []


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one file, honouring `Range: bytes=N-` as a real server would."""

    payload = b""
    ranges: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        start = 0
        header = self.headers.get("Range")
        type(self).ranges.append(header or "")
        if header:
            start = int(header.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(self.payload) - 1}/*")
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_interrupted_download_resumes(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "src.tar.gz")
    data = archive.read_bytes()
    RangeHandler.payload, RangeHandler.ranges = data, []
    server = http.server.HTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = tmp_path / "out"
        out.mkdir()
        (out / "facades.tar.gz.part").write_bytes(data[:40])  # what a killed run left
        url = f"http://127.0.0.1:{server.server_address[1]}/facades.tar.gz"
        target = download_dataset("facades", out, url=url, sha256=file_sha256(archive))
    finally:
        server.shutdown()
        server.server_close()
    assert RangeHandler.ranges == ["bytes=40-"]  # only the missing bytes were asked for
    assert (target / "test" / "1.jpg").read_bytes() == b"fake image bytes"
    assert sorted(p.name for p in out.iterdir()) == ["facades"]


def test_an_archive_already_in_out_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "facades.tar.gz").write_bytes(b"the user's own archive")
    with pytest.raises(UserError, match=r"facades.tar.gz: already exists; extract it with archive"):
        download_dataset("facades", tmp_path, url="http://127.0.0.1:9/none.tar.gz", timeout=1)
    assert (tmp_path / "facades.tar.gz").read_bytes() == b"the user's own archive"
