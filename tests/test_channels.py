"""End to end beyond 8-bit RGB: N channels, 16 bits, stacked inputs, the Lab colour space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pix2pix
from conftest import random_image, tiny_config
from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.cli import main
from pix2pix.data.files.colour import rgb_to_lab
from pix2pix.data.files.images import image_info, read_image, save_image
from pix2pix.data.pairs.datasets import PairedDataset, resolve_format
from pix2pix.data.tools.derive import colorize
from pix2pix.errors import ConfigError, UserError
from pix2pix.nets import build_generator
from pix2pix.training.loop import fit
from pix2pix.translate import translate_files


def saved_config(ckpt: Path) -> dict:
    return json.loads((ckpt / "config.json").read_text())["config"]


def write_bands(root: Path, count: int = 4, size: int = 40, channels: int = 4) -> Path:
    """Paired .npy arrays of `channels` 16-bit bands; B is a pixelwise function of A."""
    rng = np.random.default_rng(0)
    for i in range(count):
        a = random_image(rng, size, size, channels).astype(np.uint16) * 257
        save_image(a, root / "A" / f"s{i}.npy")
        save_image(65535 - a // 2, root / "B" / f"s{i}.npy")
    return root


def test_four_channel_16bit_dataset_trains_and_translates(tmp_path: Path) -> None:
    data = write_bands(tmp_path / "bands")
    item = PairedDataset(tiny_config(data).data, 4, 4)[0]
    assert item["input"].shape == (4, 32, 32) and item["target"].shape == (4, 32, 32)
    cfg = tiny_config(data, train={"max_steps": 2, "sample_every": 2})
    ckpt = fit(cfg, tmp_path / "run")
    saved = saved_config(ckpt)
    assert (saved["model"]["in_channels"], saved["model"]["out_channels"]) == (4, 4)
    assert saved["data"]["output_depth"] == "uint16"
    grid = read_image(tmp_path / "run" / "samples" / "step_00000002.png")
    assert grid.shape[2] == 3 and grid.shape[1] > 3 * 4 * 32  # 4 channel tiles per image
    # translate needs no flags: 4 channels in, a 4-page 16-bit TIFF out, same size
    model = pix2pix.load(tmp_path / "run", device="cpu")
    outs = translate_files(model, [str(data / "A")], tmp_path / "out", progress=False)
    assert [p.name for p in outs] == ["s0.tif", "s1.tif", "s2.tif", "s3.tif"]
    out = read_image(outs[0])
    assert out.shape == (40, 40, 4) and out.dtype == np.uint16
    assert len(np.unique(out)) > 256  # not 8-bit values in disguise


def test_stacked_input_folders(capsys, tmp_path: Path) -> None:
    """A1/ (RGB, 8-bit) + A2/ (gray, 16-bit) -> B/ (RGB): a 4-channel input."""
    rng = np.random.default_rng(0)
    root = tmp_path / "stack"
    for i in range(4):
        rgb = random_image(rng, 36, 36)
        save_image(rgb, root / "A1" / f"x{i}.png")
        save_image(random_image(rng, 36, 36, 1).astype(np.uint16) * 257, root / "A2" / f"x{i}.png")
        save_image(255 - rgb, root / "B" / f"x{i}.png")
    item = PairedDataset(tiny_config(root).data, 4, 3)[0]
    assert item["input"].shape == (4, 32, 32)
    cfg = tiny_config(root, train={"max_steps": 2})
    main(["-q", "train", "--config", str(_write(tmp_path / "c.json", cfg.to_json())),
          "--out", str(tmp_path / "run")])  # fmt: skip
    assert saved_config(tmp_path / "run" / "latest")["model"]["in_channels"] == 4
    main(["-q", "translate", "--checkpoint", str(tmp_path / "run"), str(root), "--paired",
          "--out", str(tmp_path / "out"), "--eval"])  # fmt: skip
    assert read_image(tmp_path / "out" / "x3.png").shape == (36, 36, 3)
    capsys.readouterr()
    # a plain RGB image is not what this model takes: one line, exit 2, nothing written
    with pytest.raises(SystemExit) as exc:
        main(["translate", "--checkpoint", str(tmp_path / "run"), str(root / "B"),
              "--out", str(tmp_path / "none")])  # fmt: skip
    assert (
        exc.value.code == 2 and "has 3 channel(s), but the model takes 4" in capsys.readouterr().err
    )
    assert not (tmp_path / "none").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_lab_mode_trains_on_l_and_translates_to_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(4):
        save_image(random_image(rng, 40, 40), tmp_path / "photos" / f"p{i}.png")
    colorize(tmp_path / "photos", tmp_path / "col")
    cfg = tiny_config(tmp_path / "col", data={"color_space": "lab"}, train={"max_steps": 2})
    item = PairedDataset(resolve_format(cfg).data, 1, 2)[0]
    assert item["input"].shape == (1, 32, 32) and item["target"].shape == (2, 32, 32)
    ckpt = fit(cfg, tmp_path / "run")
    saved = saved_config(ckpt)
    assert (saved["model"]["in_channels"], saved["model"]["out_channels"]) == (1, 2)
    model = pix2pix.load(tmp_path / "run", device="cpu")
    gray = read_image(tmp_path / "col" / "A" / "p0.png")
    out = np.asarray(model.translate(Image.fromarray(gray[:, :, 0]), eval_mode=True))
    assert out.shape == (40, 40, 3)

    def lightness(rgb: np.ndarray) -> torch.Tensor:
        return rgb_to_lab(torch.tensor(rgb).permute(2, 0, 1).double() / 255)[0]

    # the output keeps the input's L* (only a*b* are predicted); the clipping of
    # out-of-gamut colours and 8-bit rounding move it a little
    diff = (lightness(out) - lightness(np.repeat(gray, 3, axis=2))).abs()
    assert diff.median() < 0.5 and diff.max() < 10
    outs = translate_files(model, [str(tmp_path / "photos")], tmp_path / "o", progress=False)
    assert image_info(outs[0]).channels == 3  # a colour photo as input: its L* is used


def test_lab_mode_rejects_grayscale_targets_and_other_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for side in "AB":
        save_image(random_image(rng, 36, 36, 1), tmp_path / "gray" / side / "x.png")
    with pytest.raises(UserError, match="lab needs colour .* targets"):
        resolve_format(tiny_config(tmp_path / "gray", data={"color_space": "lab"}))
    cfg = tiny_config(tmp_path / "gray", data={"color_space": "lab"}, model={"in_channels": 3})
    with pytest.raises(ConfigError, match="in_channels 1 out_channels 2"):
        resolve_format(cfg)


def test_16bit_grayscale_outputs_are_written_in_16_bits(tmp_path: Path) -> None:
    for side in "AB":
        save_image(np.full((36, 36, 1), 40000, np.uint16), tmp_path / "d" / side / "x.png")
    resolved = resolve_format(tiny_config(tmp_path / "d"))
    assert resolved.data.output_depth == "uint16"
    assert (resolved.model.in_channels, resolved.model.out_channels) == (1, 1)
    save_checkpoint(
        tmp_path / "ck", resolved, Progress(), {"generator": build_generator(resolved.model)}
    )
    model = pix2pix.load(tmp_path / "ck", device="cpu")
    outs = translate_files(model, [str(tmp_path / "d" / "A")], tmp_path / "o", progress=False)
    info = image_info(outs[0])
    assert outs[0].suffix == ".png" and (info.mode, info.depth) == ("I;16", "uint16")
    assert model.translate(Image.new("I;16", (20, 10))).mode == "I;16"


def test_a_run_from_before_output_depth_resumes(tmp_path: Path) -> None:
    data = write_bands(tmp_path / "bands", count=2, channels=1)
    cfg = tiny_config(data, train={"max_steps": 1})
    ckpt = fit(cfg, tmp_path / "run")
    meta = json.loads((ckpt / "config.json").read_text())
    del meta["config"]["data"]["output_depth"]  # as written before the setting existed
    del meta["config"]["data"]["color_space"]
    (ckpt / "config.json").write_text(json.dumps(meta))
    fit(cfg.replace(train={"max_steps": 2}), tmp_path / "run", resume=True)
    assert saved_config(tmp_path / "run" / "latest")["data"]["output_depth"] == "uint16"
