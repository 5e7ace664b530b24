"""Every input a user can get wrong: one line on stderr naming it, exit 2, nothing changed.

One table over the commands that read user input (train, translate, evaluate, export,
serve, segmenter, import, push, data tools). Each case builds what it needs in its own folder (beside a
shared trained checkpoint and dataset) and runs the command in this process; the test
asserts exit status 2, exactly one stderr line, `pix2pix: error: ...` naming the file or
value, no traceback, and that every file and folder that existed before is byte-identical
afterwards, with nothing new left behind.
"""

# ruff: noqa: E501  (the table keeps one case a line)
from __future__ import annotations

import http.server
import io
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli, tiny_config, write_aligned, write_paired
from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.data.files.images import save_image
from pix2pix.nets import build_generator
from pix2pix.segmentation import SegmenterConfig, train_segmenter
from pix2pix.training.loop import fit

TRAIN = [
    "--generator", "unet_32", "--ngf", "8", "--ndf", "8", "--load-size", "36",
    "--crop-size", "32", "--batch-size", "2", "--workers", "0", "--device", "cpu",
    "--max-steps", "1", "--no-progress", "--no-report", "--sample-every", "0",
]  # fmt: skip


@dataclass
class Shared:
    """Read-only things the cases point at."""

    root: Path
    data: Path  # aligned pairs, 40x40 halves
    run: Path  # a trained run folder (unet_32)
    seg: Path  # a trained segmenter
    four: Path  # a checkpoint writing 4-channel outputs


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    root = tmp_path_factory.mktemp("bad_inputs")
    data = write_aligned(root / "data", count=4)
    run = root / "run"
    fit(tiny_config(data, train={"max_steps": 2}), run)
    seg = train_segmenter(
        SegmenterConfig(
            root=str(data),
            palette="facades",
            size=32,
            width=2,
            epochs=1,
            batch_size=4,
            device="cpu",
        ),
        root / "seg",
    )
    cfg = tiny_config(data, model={"in_channels": 3, "out_channels": 4})
    save_checkpoint(root / "four", cfg, Progress(), {"generator": build_generator(cfg.model)})
    return Shared(root, data, run, seg, root / "four")


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG signature and IHDR declaring width x height, then garbage: a bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    data = zlib.compress(b"\0" * 64)  # far fewer pixels than declared
    chunk += struct.pack(">I", len(data)) + b"IDAT" + data
    chunk += struct.pack(">I", zlib.crc32(b"IDAT" + data) & 0xFFFFFFFF)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)
    return path


def dataset_with(tmp: Path, name: str, content: bytes) -> Path:
    """A copy of a small aligned dataset in which `name` has `content`."""
    data = write_aligned(tmp / "data", count=3)
    (data / name).write_bytes(content)
    return data


def copy_run(shared: Shared, tmp: Path) -> Path:
    """A copy of the trained run, to damage."""
    import shutil

    return Path(shutil.copytree(shared.run, tmp / "run"))


def json_file(tmp: Path, value: object) -> Path:
    path = tmp / "config.json"
    path.write_text(json.dumps(value))
    return path


class _Evil:
    """Pickled as a call to os.system: what weights_only=True must refuse to load."""

    def __reduce__(self) -> tuple:
        return (os.system, ("echo this must never run",))


def pickled(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _truncated_png(tmp: Path) -> bytes:
    save_image(np.zeros((40, 80, 3), np.uint8) + 7, tmp / "full.png")
    data = (tmp / "full.png").read_bytes()
    (tmp / "full.png").unlink()
    return data[: len(data) // 2]


class ShortBody(http.server.BaseHTTPRequestHandler):
    """A chunked body cut off inside a chunk: http.client raises IncompleteRead."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"64\r\n" + b"x" * 100 + b"\r\n")  # a whole chunk of 100 bytes
        self.wfile.write(b"1000\r\n" + b"y" * 10)  # then 10 bytes of a 4096-byte one
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def short_server() -> tuple[http.server.HTTPServer, str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), ShortBody)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/facades.tar.gz"


# Each case: (id, build(shared, tmp) -> argv, a fragment the error line must contain).
# Fragments name the file or value at fault. `{tmp}` in a fragment is the case's folder.
Case = tuple[str, Callable[[Shared, Path], list[object]], str]


def _train(data: Path | str, out: Path, *extra: object) -> list[object]:
    return ["train", "--data", data, "--out", out, *TRAIN, *extra]


CASES: list[Case] = [
    # ---- train: data
    ("train-missing-data", lambda s, t: _train(t / "nope", t / "r"), "nope: dataset folder not found"),
    ("train-empty-data", lambda s, t: _train((t / "empty").mkdir() or t / "empty", t / "r"), "empty"),
    ("train-truncated-png", lambda s, t: _train(dataset_with(t, "9.png", _truncated_png(t)), t / "r"), "9.png: cannot read image"),
    ("train-zero-byte-png", lambda s, t: _train(dataset_with(t, "9.png", b""), t / "r"), "9.png"),
    ("train-text-as-png", lambda s, t: _train(dataset_with(t, "9.png", b"hello, not an image"), t / "r"), "9.png: cannot read image"),
    ("train-decompression-bomb", lambda s, t: _train(png_header_only(t / "data" / "1.png", 30000, 15000).parent, t / "r"), "1.png: 30000x15000"),
    ("train-pixel-limit-flag", lambda s, t: _train(s.data, t / "r", "--max-image-pixels", "100"), "over the limit of 100"),
    ("train-ab-size-mismatch", lambda s, t: _train(_mismatched(t), t / "r"), "img0.png"),
    ("train-image-smaller-than-crop", lambda s, t: _train(s.data, t / "r", "--preprocess", "crop", "--crop-size", "64"), "40"),
    ("train-out-of-range-lr", lambda s, t: _train(s.data, t / "r", "--lr", "-1"), "--lr -1.0"),
    ("train-out-of-range-seed", lambda s, t: _train(s.data, t / "r", "--seed", str(2**64)), "--seed 18446744073709551616"),
    ("train-bad-choice", lambda s, t: _train(s.data, t / "r", "--precision", "fp64"), "'fp64'"),
    ("train-out-is-foreign-folder", lambda s, t: _train(s.data, _foreign(t)), "notes.txt"),
    ("train-out-is-a-file", lambda s, t: _train(s.data, _file(t, "r")), "r: is a file"),
    # ---- train: --config
    ("config-missing-file", lambda s, t: _train(s.data, t / "r", "--config", t / "none.json"), "none.json: config file not found"),
    ("config-not-json", lambda s, t: _train(s.data, t / "r", "--config", _file(t, "c.json", b"{oops")), "c.json: not a readable JSON"),
    ("config-is-a-list", lambda s, t: _train(s.data, t / "r", "--config", json_file(t, [1, 2])), "config.json: a config is a JSON object"),
    ("config-wrong-type", lambda s, t: _train(s.data, t / "r", "--config", json_file(t, {"train": {"epochs": "ten"}})), "--epochs 'ten'"),
    ("config-section-not-object", lambda s, t: _train(s.data, t / "r", "--config", json_file(t, {"model": ["unet_32"]})), "section model"),
    ("config-unknown-key", lambda s, t: _train(s.data, t / "r", "--config", json_file(t, {"train": {"epoch": 3}})), "unknown train setting(s) epoch"),
    ("config-unknown-section", lambda s, t: _train(s.data, t / "r", "--config", json_file(t, {"trian": {}})), "unknown section(s) trian"),
    # ---- train --resume: checkpoints
    ("resume-no-run", lambda s, t: ["train", "--out", t / "none", "--resume"], "none: no such checkpoint"),
    ("resume-forbidden-pickle", lambda s, t: ["train", "--out", _damaged(s, t, "training_state.pt", pickled({"x": _Evil()})), "--resume"], "training_state.pt: holds objects"),
    ("resume-state-not-a-dict", lambda s, t: ["train", "--out", _damaged(s, t, "training_state.pt", pickled([1, 2])), "--resume"], "training_state.pt: not a pix2pix training state"),
    ("resume-pickle-as-safetensors", lambda s, t: ["train", "--out", _damaged(s, t, "generator.safetensors", pickled({"w": _Evil()})), "--resume"], "generator.safetensors: unreadable weights"),
    ("resume-missing-file", lambda s, t: ["train", "--out", _damaged(s, t, "discriminator.safetensors", None), "--resume"], "missing discriminator.safetensors"),
    ("resume-newer-format", lambda s, t: ["train", "--out", _format(s, t, 99), "--resume"], "format version 99"),
    ("resume-changed-setting", lambda s, t: ["train", "--out", copy_run(s, t), "--resume", "--ngf", "16"], "--ngf 16 (checkpoint: 8)"),
    ("resume-config-changes-setting", lambda s, t: ["train", "--out", copy_run(s, t), "--resume", "--config", json_file(t, {"model": {"ndf": 4}})], "--ndf 4 (checkpoint: 8)"),
    # ---- translate
    ("translate-missing-checkpoint", lambda s, t: ["translate", "--checkpoint", t / "ck", _img(t), "--out", t / "o"], "ck: no such checkpoint"),
    ("translate-missing-input", lambda s, t: ["translate", "--checkpoint", s.run, t / "x.png", "--out", t / "o"], "x.png"),
    ("translate-out-is-input-folder", lambda s, t: ["translate", "--checkpoint", s.run, _img(t).parent, "--out", t / "in"], "would overwrite the input"),
    ("translate-truncated-input", lambda s, t: ["translate", "--checkpoint", s.run, _file(t, "in/b.png", _truncated_png(t)), "--out", t / "o"], "b.png: cannot read image"),
    ("translate-out-is-a-file", lambda s, t: ["translate", "--checkpoint", s.run, _img(t), "--out", _file(t, "o.png")], "o.png: is a file"),
    ("translate-existing-output", lambda s, t: ["translate", "--checkpoint", s.run, _img(t), "--out", _file(t, "o/a.png").parent], "a.png already exist(s); pass --overwrite"),
    ("translate-aligned-into-dataset", lambda s, t: ["translate", "--checkpoint", s.run, "--aligned", _aligned_copy(t), "--out", t / "data"], "would overwrite the input"),
    ("translate-batch-size-0", lambda s, t: ["translate", "--checkpoint", s.run, _img(t), "--out", t / "o", "--batch-size", "0"], "--batch-size 0"),
    ("translate-seed-beyond-64-bits", lambda s, t: ["translate", "--checkpoint", s.run, _img(t), "--out", t / "o", "--seed", str(2**70)], "--seed 1180591620717411303424"),
    ("translate-corrupt-checkpoint-config", lambda s, t: ["translate", "--checkpoint", _meta(s, t, "{not json"), _img(t), "--out", t / "o"], "config.json: unreadable"),
    ("translate-tile-not-a-multiple", lambda s, t: ["translate", "--checkpoint", s.run, _img(t), "--out", t / "o", "--tile", "30"], "--tile 30 --tile-overlap 0: tile 30 is not a multiple"),
    ("translate-tile-overlap-too-big", lambda s, t: ["translate", "--checkpoint", s.run, _img(t), "--out", t / "o", "--tile", "32", "--tile-overlap", "32"], "smaller than the tile 32"),
    ("translate-tile-not-a-size", lambda s, t: ["translate", "--checkpoint", s.run, _img(t), "--out", t / "o", "--tile", "big"], "--tile 'big' is not valid"),
    ("translate-max-memory-not-a-size", lambda s, t: ["translate", "--checkpoint", s.run, _img(t), "--out", t / "o", "--max-memory", "lots"], "--max-memory 'lots' is not a size"),
    # ---- evaluate
    ("evaluate-missing-split", lambda s, t: ["evaluate", "--checkpoint", s.run, "--data", _splits(t), "--out", t / "e"], "has no test/ subfolder (it has train/, val/)"),
    ("evaluate-not-a-segmenter", lambda s, t: ["evaluate", "--checkpoint", s.run, "--data", s.data, "--segmenter", s.run, "--out", t / "e"], "run: no segmenter here"),
    ("evaluate-out-is-foreign", lambda s, t: ["evaluate", "--checkpoint", s.run, "--data", s.data, "--out", _foreign(t)], "does not hold an evaluation report"),
    ("evaluate-samples-negative", lambda s, t: ["evaluate", "--checkpoint", s.run, "--data", s.data, "--samples", "-1", "--out", t / "e"], "--samples -1"),
    # ---- export
    ("export-existing-file", lambda s, t: ["export", "--checkpoint", s.run, "--format", "torchscript", "--out", _file(t, "g.pt")], "g.pt: already exists"),
    ("export-out-is-folder", lambda s, t: ["export", "--checkpoint", s.run, "--format", "torchscript", "--out", t], "is a folder"),
    ("export-negative-tolerance", lambda s, t: ["export", "--checkpoint", s.run, "--format", "torchscript", "--out", t / "g.pt", "--tolerance", "-1"], "--tolerance -1"),
    # ---- serve (all refused before a socket is opened)
    ("serve-upload-limit-below-a-byte", lambda s, t: ["serve", "--checkpoint", s.run, "--max-upload-mb", "1e-9"], "--max-upload-mb 1e-09"),
    ("serve-port-out-of-range", lambda s, t: ["serve", "--checkpoint", s.run, "--port", "70000"], "--port 70000"),
    ("serve-n-channel-output", lambda s, t: ["serve", "--checkpoint", s.four], "writes 4 channels"),
    ("serve-bad-palette", lambda s, t: ["serve", "--checkpoint", s.run, "--palette", "1,2"], "1,2"),
    # ---- segmenter
    ("segmenter-out-is-a-run", lambda s, t: ["segmenter", "train", "--data", s.data, "--palette", "facades", "--out", copy_run(s, t)], "does not hold a segmenter"),
    ("segmenter-exists", lambda s, t: ["segmenter", "train", "--data", s.data, "--palette", "facades", "--out", s.seg], "already holds a segmenter; pass --overwrite"),
    ("segmenter-index-classes", lambda s, t: ["segmenter", "train", "--data", s.data, "--labels", "index", "--num-classes", "1", "--out", t / "s"], "--num-classes"),
    ("segmenter-seed-out-of-range", lambda s, t: ["segmenter", "train", "--data", s.data, "--palette", "facades", "--seed", "-1", "--out", t / "s"], "--seed -1"),
    ("demo-out-is-foreign", lambda s, t: ["demo", "--out", _foreign(t), "--steps", "1"], "is not a demo folder (it holds notes.txt)"),
    # ---- import official
    ("import-missing-file", lambda s, t: ["import", "official", t / "none.pth", "--out", t / "ck"], "none.pth: no such file"),
    ("import-code-in-the-pickle", lambda s, t: ["import", "official", _file(t, "G.pth", pickled({"x": _Evil()})), "--out", t / "ck"], "G.pth: holds objects other than tensors"),
    ("import-not-a-state-dict", lambda s, t: ["import", "official", _file(t, "G.pth", pickled([1, 2])), "--out", t / "ck"], "G.pth: not a state dict of tensors"),
    ("import-generator-as-discriminator", lambda s, t: ["import", "official", OFFICIAL / "unet_256_ngf4_batch.pth", "--discriminator", OFFICIAL / "unet_128_ngf4_batch_gray2rgb.pth", "--out", t / "ck"], "unet_128_ngf4_batch_gray2rgb.pth: not an official PatchGAN discriminator"),
    ("import-out-is-foreign", lambda s, t: ["import", "official", OFFICIAL / "unet_256_ngf4_batch.pth", "--out", _foreign(t), "--overwrite"], "does not hold a checkpoint"),
    ("import-out-holds-the-input", lambda s, t: ["import", "official", _file(t, "ck/G.pth", (OFFICIAL / "unet_256_ngf4_batch.pth").read_bytes()), "--out", t / "ck", "--overwrite"], "holds the input"),
    ("import-out-cannot-be-written", lambda s, t: ["import", "official", OFFICIAL / "unet_256_ngf4_batch.pth", "--out", _file(t, "f") / "ck"], "cannot write the checkpoint"),
    ("import-lab-for-an-rgb-model", lambda s, t: ["import", "official", OFFICIAL / "unet_256_ngf4_batch.pth", "--color-space", "lab", "--out", t / "ck"], "needs a 1 -> 2 channel generator"),
    # ---- push (all refused before the Hub is contacted)
    ("push-missing-checkpoint", lambda s, t: ["push", t / "none", "me/x"], "none: no such checkpoint"),
    ("push-not-a-checkpoint", lambda s, t: ["push", _foreign(t), "me/x"], "no config.json here"),
    ("push-bad-repo-id", lambda s, t: ["push", s.run, "me/x/y"], "hf:me/x/y: not a Hub model id"),
    # ---- data tools
    ("data-combine-missing", lambda s, t: ["data", "combine", t / "none", "--out", t / "o"], "none"),
    ("data-split-shares", lambda s, t: ["data", "split", s.data, "--out", t / "o", "--val", "0.8", "--test", "0.8"], "--val 0.8"),
    ("data-split-into-nonempty", lambda s, t: ["data", "split", s.data, "--out", _foreign(t)], "already exists and is not empty"),
    ("data-download-unknown", lambda s, t: ["data", "download", "faces", "--out", t / "d"], "'faces'"),
    ("data-download-bad-sha", lambda s, t: ["data", "download", "facades", "--out", t / "d", "--sha256", "abc"], "--sha256 'abc'"),
    ("data-download-incomplete-read", lambda s, t: ["data", "download", "facades", "--out", t, "--url", SERVER_URL], "download stopped early"),
]  # fmt: skip

SERVER_URL = "{server}"  # replaced by the test with a live server's URL
OFFICIAL = Path(__file__).parent / "fixtures" / "official"  # checkpoints of the official code


def _img(tmp: Path) -> Path:
    path = tmp / "in" / "a.png"
    save_image(np.full((40, 40, 3), 90, np.uint8), path)
    return path


def _file(tmp: Path, name: str, content: bytes = b"precious") -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _foreign(tmp: Path) -> Path:
    """A user's folder with something of theirs in it."""
    _file(tmp / "mine", "notes.txt", b"my notes")
    return tmp / "mine"


def _mismatched(tmp: Path) -> Path:
    data = write_paired(tmp / "paired", count=2)
    save_image(np.zeros((32, 32, 3), np.uint8), data / "B" / "img0.png")
    return data


def _damaged(shared: Shared, tmp: Path, name: str, content: bytes | None) -> Path:
    run = copy_run(shared, tmp)
    if content is None:
        (run / "latest" / name).unlink()
    else:
        (run / "latest" / name).write_bytes(content)
    return run


def _format(shared: Shared, tmp: Path, version: int) -> Path:
    run = copy_run(shared, tmp)
    meta = json.loads((run / "latest" / "config.json").read_text())
    meta["format_version"] = version
    (run / "latest" / "config.json").write_text(json.dumps(meta))
    return run


def _meta(shared: Shared, tmp: Path, text: str) -> Path:
    run = copy_run(shared, tmp)
    (run / "latest" / "config.json").write_text(text)
    return run


def _aligned_copy(tmp: Path) -> Path:
    """Aligned A|B files in tmp/data, translated into that same folder."""
    return write_aligned(tmp / "data", count=2)


def _splits(tmp: Path) -> Path:
    """A dataset with train/ and val/ but no test/."""
    write_aligned(tmp / "ds" / "train", count=2)
    write_aligned(tmp / "ds" / "val", count=2)
    return tmp / "ds"


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `roots`."""
    seen: dict[str, bytes | None] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                seen[os.path.join(dirpath, d)] = None
            for f in filenames:
                seen[os.path.join(dirpath, f)] = Path(dirpath, f).read_bytes()
    return seen


def test_the_table_is_wide_enough() -> None:
    prefixes = {name.split("-")[0] for name, _, _ in CASES}
    commands = {{"config": "train", "resume": "train"}.get(p, p) for p in prefixes}
    assert len(CASES) >= 30 and len({name for name, _, _ in CASES}) == len(CASES)
    assert commands == {"train", "translate", "evaluate", "export", "serve", "segmenter", "data",
                        "demo", "import", "push"}  # fmt: skip


@pytest.mark.parametrize(("build", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_exit_2_and_changes_nothing(
    shared: Shared,
    build: Callable[[Shared, Path], list[object]],
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a fresh log handler on this test's stderr, so log lines are counted too
    monkeypatch.setattr(logging.root, "handlers", [])
    server = None
    argv = [str(a) for a in build(shared, tmp_path)]
    if SERVER_URL in argv:
        server, url = short_server()
        argv[argv.index(SERVER_URL)] = url
    before = snapshot(tmp_path, shared.root)
    try:
        code, _, err = run_cli(capsys, *argv)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("pix2pix: error: ") and "Traceback" not in err
    assert fragment in lines[0], lines[0]
    after = snapshot(tmp_path, shared.root)
    # nothing new either, but a partial download: the next run resumes from it
    new = {p for p in set(after) - set(before) if not p.endswith(".tar.gz.part")}
    assert not new and before.keys() <= after.keys(), sorted(new | (set(before) - set(after)))
    changed = [p for p in before if before[p] != after[p]]
    assert not changed, changed
