"""Shared fixtures: tiny generated datasets and tiny configs (CPU, seconds)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pix2pix.config import DataConfig, ModelConfig, MonitorConfig, RunConfig, TrainConfig
from pix2pix.data.files.images import save_image

torch.set_num_threads(2)
# compiled generators (pix2pix.translate.aot) go to a cache of this run, never the user's;
# subprocesses (CLI tests) inherit it
os.environ["PIX2PIX_CACHE"] = tempfile.mkdtemp(prefix="pix2pix-test-cache-")
atexit.register(shutil.rmtree, os.environ["PIX2PIX_CACHE"], ignore_errors=True)


def random_image(
    rng: np.random.Generator, height: int, width: int, channels: int = 3
) -> np.ndarray:
    """A smooth random (H, W, C) uint8 image: blocky noise, so resizing keeps structure."""
    small = rng.integers(0, 256, size=(max(1, height // 4), max(1, width // 4), channels))
    big = np.kron(small, np.ones((4, 4, 1)))[:height, :width]
    pad_h, pad_w = height - big.shape[0], width - big.shape[1]
    return np.pad(big, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge").astype(np.uint8)


def write_aligned(
    root: Path, count: int = 6, size: int = 40, channels: int = 3, seed: int = 0
) -> Path:
    """`count` aligned A|B files of size x 2size; B is a fixed function of A (learnable)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        a = random_image(rng, size, size, channels)
        b = (255 - a) // 2 + 64  # invert and compress: a simple pixelwise mapping
        save_image(np.concatenate([a, b.astype(np.uint8)], axis=1), root / f"{i + 1}.png")
    return root


def write_paired(root: Path, count: int = 4, size: int = 40, seed: int = 0) -> Path:
    """A/ and B/ folders with matching stems."""
    rng = np.random.default_rng(seed)
    for side in ("A", "B"):
        (root / side).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        a = random_image(rng, size, size)
        save_image(a, root / "A" / f"img{i}.png")
        save_image(255 - a, root / "B" / f"img{i}.png")
    return root


def write_labels(
    root: Path, count: int = 6, size: int = 40, seed: int = 0, index: bool = False
) -> Path:
    """`count` aligned photo|label files: the label side (B) is a map of 8x8 blocks of
    random facades classes (palette colours, or class ids when `index`), the photo side
    (A) a colour per class plus noise (so labels -> photo is learnable, BtoA)."""
    from pix2pix.palette import FACADES

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    colors = np.array([c for _, c in FACADES], np.uint8)
    for i in range(count):
        ids = np.kron(rng.integers(0, len(colors), (size // 8 + 1, size // 8 + 1)),
                      np.ones((8, 8), int))[:size, :size]  # fmt: skip
        shade = ids[..., None] * np.array([20, 7, 13]) % 256
        photo = (shade + rng.integers(0, 24, (size, size, 3))).clip(0, 255).astype(np.uint8)
        if index:  # A/ photos, B/ one-channel class ids
            for side in ("A", "B"):
                (root / side).mkdir(exist_ok=True)
            save_image(photo, root / "A" / f"{i}.png")
            save_image(ids.astype(np.uint8)[..., None], root / "B" / f"{i}.png")
        else:
            save_image(np.concatenate([photo, colors[ids]], axis=1), root / f"{i}.png")
    return root


def tiny_config(root: Path | str, **sections: dict) -> RunConfig:
    """unet_32 with 8 filters on 32x32 crops: a training step takes milliseconds."""
    base = RunConfig(
        model=ModelConfig(generator="unet_32", ngf=8, ndf=8),
        data=DataConfig(root=str(root), load_size=36, crop_size=32, workers=0),
        train=TrainConfig(
            epochs=2,
            decay_epochs=2,
            batch_size=2,
            progress=False,
            sample_every=0,
            save_every=0,
            keep_every=0,
            device="cpu",
            precision="fp32",  # the same numerics on every CPU (auto is bf16 on some)
        ),
        monitor=MonitorConfig(report=False),  # curves cost ~0.5 s a run; tested on their own
    )
    return base.replace(**sections)


@pytest.fixture(autouse=True)
def _process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo what an in-process `pix2pix` command sets for its process (the pixel limit)."""
    from PIL import Image

    from pix2pix.data.files.limits import PIXEL_LIMIT_ENV

    monkeypatch.delenv(PIXEL_LIMIT_ENV, raising=False)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.fixture
def aligned_data(tmp_path: Path) -> Path:
    return write_aligned(tmp_path / "data")


@pytest.fixture
def paired_data(tmp_path: Path) -> Path:
    return write_paired(tmp_path / "paired")


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """`pix2pix ARGS...` in this process: (exit status, stdout, stderr)."""
    from pix2pix.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    """The one `pix2pix: error: ...` line of a failed command (asserting there is one)."""
    lines = [line for line in err.splitlines() if line.startswith("pix2pix: error:")]
    assert len(lines) == 1, err
    return lines[0]
