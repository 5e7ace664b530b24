"""Evaluation and validation beyond 8-bit RGB: N channels, 16 bits, the Lab colour space."""

from __future__ import annotations

import csv
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import random_image, tiny_config
from pix2pix.checkpoint import read_meta
from pix2pix.data.files.images import read_image, save_image, to_tensor
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.data.tools.derive import colorize
from pix2pix.errors import ConfigError
from pix2pix.evaluation.evaluate import evaluate
from pix2pix.evaluation.metrics import image_metrics, quantize
from pix2pix.evaluation.pairs import load_eval_pair, target_tensor
from pix2pix.training.loop import fit
from pix2pix.training.runlog import read_log
from pix2pix.training.validation import Validator
from test_channels import write_bands
from test_evaluate import fid_of_report
from test_metrics import TinyFeatures

EVAL = {"device": "cpu", "progress": False, "report_pairs": 1}


def metric_rows(report: Path) -> dict[str, dict[str, str]]:
    return {r["name"]: r for r in csv.DictReader((report / "metrics.csv").open())}


def check_scored_as_written(report: Path, run: Path, data: Path, suffix: str) -> np.ndarray:
    """Every output file exists with `suffix`, and the metrics of pair 0 are those of the
    file as written against its target: returns that output array."""
    config, _ = read_meta(run / "latest")
    pairs = find_pairs(data)
    rows = metric_rows(report)
    assert sorted(rows) == sorted(p.name for p in pairs)
    assert sorted(p.name for p in (report / "outputs").iterdir()) == sorted(
        f"{p.name}{suffix}" for p in pairs
    )
    written = read_image(report / "outputs" / f"{pairs[0].name}{suffix}")
    target = target_tensor(load_eval_pair(pairs[0], config))
    scores = image_metrics(to_tensor(written)[None], target)
    for name in ("l1", "psnr", "ssim"):
        assert float(rows[pairs[0].name][name]) == pytest.approx(scores[name].item(), rel=1e-4)
    summary = json.loads((report / "metrics.json").read_text())
    assert all(np.isfinite(v) for v in summary["mean"].values())
    return written


def check_report_links(report: Path) -> list[Path]:
    """Every image the page links exists and is an 8-bit PNG a browser shows."""
    links = re.findall(r'src="([^"]+)"', (report / "index.html").read_text())
    assert links
    for link in links:
        with Image.open(report / link) as im:
            assert (im.format, im.mode) in (("PNG", "RGB"), ("PNG", "L")), link
    return [report / link for link in links]


def test_four_channel_arrays_evaluate_and_validate(tmp_path: Path, caplog) -> None:
    data = write_bands(tmp_path / "bands", count=5)  # 4 channels, 16-bit, .npy
    cfg = tiny_config(data, train={"max_steps": 2},
                      monitor={"val_fraction": 0.25, "val_every": 1})  # fmt: skip
    fit(cfg, tmp_path / "run")
    records = read_log(tmp_path / "run" / "val.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    assert all(np.isfinite(r[k]) for r in records for k in ("l1", "psnr", "ssim", "ms_ssim"))
    assert (tmp_path / "run" / "best" / "config.json").is_file()

    report, summary = evaluate(tmp_path / "run", data, tmp_path / "report", fid=True, **EVAL)
    assert summary["outputs"] == {"channels": 4, "depth": "uint16", "color_space": "rgb"}
    skips = [r.getMessage() for r in caplog.records if "FID/KID skipped" in r.getMessage()]
    assert skips == ["FID/KID skipped: Inception features need 1- or 3-channel images, "
                     "these outputs have 4"]  # fmt: skip
    assert "fid" not in summary
    out = check_scored_as_written(report, tmp_path / "run", data, ".tif")
    assert out.shape == (32, 32, 4) and out.dtype == np.uint16  # evaluated at the crop size
    links = check_report_links(report)
    previews = [read_image(p) for p in links]
    assert all(p.shape == (32, 4 * 32 + 3, 3) for p in previews)  # one tile per channel


def test_sixteen_bit_grayscale_keeps_its_precision(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(3):
        a = random_image(rng, 40, 40, 1).astype(np.uint16) * 257 + rng.integers(0, 200, (40, 40, 1))
        save_image(a.astype(np.uint16), tmp_path / "d" / "A" / f"g{i}.png")
        save_image((65535 - a // 3).astype(np.uint16), tmp_path / "d" / "B" / f"g{i}.png")
    data = tmp_path / "d"
    fit(tiny_config(data, train={"max_steps": 1}), tmp_path / "run")
    config, _ = read_meta(tmp_path / "run" / "latest")
    pair = load_eval_pair(find_pairs(data)[0], config)  # resized 40 -> 32 per channel
    assert pair.target.dtype == np.uint16 and pair.target.shape == (32, 32, 1)
    assert (pair.target % 257 != 0).any()  # not 8-bit levels in disguise

    report, summary = evaluate(tmp_path / "run", data, tmp_path / "report", **EVAL)
    assert summary["outputs"]["depth"] == "uint16"
    out = check_scored_as_written(report, tmp_path / "run", data, ".png")
    with Image.open(report / "outputs" / "g0.png") as im:
        assert im.mode == "I;16"
    assert out.dtype == np.uint16 and (out % 257 != 0).any()
    links = check_report_links(report)
    assert any("_output.png" in p.name for p in links)  # 16-bit outputs get 8-bit previews


def test_quantize_follows_the_output_depth() -> None:
    x = torch.linspace(-1, 1, 1001).view(1, 1, 1, -1)
    assert len(torch.unique(quantize(x))) == 256
    sixteen = quantize(x, "uint16")
    assert len(torch.unique(sixteen)) == 1001 and (sixteen - x).abs().max() < 2 / 65535
    assert torch.equal(quantize(x * 2, "float32"), x.mul(2).clamp(-1, 1))
    with pytest.raises(ValueError, match="depth 'int8' is not valid"):
        quantize(x, "int8")


def test_lab_colorization_is_scored_in_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(5):
        save_image(random_image(rng, 40, 40), tmp_path / "photos" / f"p{i}.png")
    data = tmp_path / "col"
    colorize(tmp_path / "photos", data, workers=1)
    cfg = tiny_config(data, data={"color_space": "lab"}, train={"max_steps": 2},
                      monitor={"val_fraction": 0.25, "val_every": 2})  # fmt: skip
    fit(cfg, tmp_path / "run")
    records = read_log(tmp_path / "run" / "val.jsonl")
    assert len(records) == 1 and np.isfinite(records[0]["psnr"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(TinyFeatures()), tmp_path / "inception.pt")
    weights = str(tmp_path / "inception.pt")
    report, summary = evaluate(
        tmp_path / "run", data, tmp_path / "report", inception_weights=weights, **EVAL
    )
    assert summary["outputs"] == {"channels": 3, "depth": "uint8", "color_space": "lab"}
    # on the RGB outputs as written and the RGB target photos
    fid, _ = fid_of_report(report, tmp_path / "run", data, Path(weights))
    assert summary["fid"] > 1e-3 and summary["fid"] == pytest.approx(fid, rel=1e-6)
    out = check_scored_as_written(report, tmp_path / "run", data, ".png")
    assert out.shape == (32, 32, 3)
    assert "compared with the RGB target photos" in (report / "index.html").read_text()
    inputs = [p for p in check_report_links(report) if p.name.endswith("_input.png")]
    gray = read_image(inputs[0])  # the L* the model sees, shown in gray
    assert (gray == gray[:, :, :1]).all() and gray.std() > 0


def test_fid_validation_needs_one_or_three_channel_outputs() -> None:
    cfg = tiny_config("data", model={"in_channels": 4, "out_channels": 4},
                      monitor={"val_metric": "fid", "val_data": "data"})  # fmt: skip
    with pytest.raises(ConfigError, match="fid needs 1- or 3-channel outputs, this run's have 4"):
        Validator(cfg, [])
