"""The benchmark harness runs end to end and reports every figure (never how fast)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import knobs
from benchmarks.throughput import run, table
from conftest import write_aligned
from pix2pix.runtime import native_bf16

REQUIRED = (
    "device", "torch", "train_baseline_ips", "train_fast_ips", "train_speedup",
    "infer_baseline_ips", "infer_fast_ips", "infer_speedup", "gflop_per_iter",
    "achieved_gflops", "peak_gflops",
)  # fmt: skip


def test_throughput_harness_reports_all_figures(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=4)
    args = argparse.Namespace(
        quick=True, device="cpu", size=32, batch_size=2, data=str(data), compile="off"
    )
    result = run(args)
    for key in REQUIRED:
        assert key in result, key
    numbers = [v for v in result.values() if isinstance(v, float)]
    assert all(math.isfinite(v) and v > 0 for v in numbers)
    # the FLOP count of a unet_32 iteration at 32x32, batch 2: the same every run
    assert 0.05 < result["gflop_per_iter"] < 5
    assert "| training |" in table(result)


def test_knob_table_measures_every_variant_against_the_baseline() -> None:
    args = argparse.Namespace(device="cpu", size=32, batch_size=1, reps=1, skip="compile")
    result = knobs.run(args)
    assert "+ channels_last" in result["train"] and "bf16 weights" in result["infer"]
    assert not any("compile" in name for name in result["train"])
    for part in ("train", "infer"):
        base = result[part]["plain fp32 eager"]["s"]
        assert all(math.isfinite(v["s"]) and v["s"] > 0 for v in result[part].values())
        for name, v in result[part].items():  # each against the baseline's seconds
            assert v["speedup"] == pytest.approx(base / v["s"]), (part, name)
    assert "| + channels_last |" in knobs.table(result)


def test_tiling_benchmark_compares_tiled_and_whole_outputs() -> None:
    from benchmarks import tiling

    args = argparse.Namespace(size=512, tile=256, overlap=64, data=None, checkpoint=None)
    result = tiling.run(args)
    assert result["pixels_covered_ratio"] == 9 * 256 * 256 / 512**2  # 3 x 3 tiles
    assert 0 < result["eval_mean_abs_diff"] < 0.2 and result["eval_seam_ratio_blended"] > 0
    assert result["seconds_tiled"] > 0 and result["time_ratio"] > 0


def test_large_image_benchmark_streams_and_checks_the_output(tmp_path: Path) -> None:
    from benchmarks import large_image

    args = argparse.Namespace(size=300, tile=64, overlap=16, generator="unet_32",
                              out=str(tmp_path / "large"))  # fmt: skip
    result = large_image.run(args)
    assert result["output_matches_input_size_and_format"] and result["georeferencing_kept"]
    assert result["peak_rss_mib"] > 0 and result["seconds"] > 0


def test_gpu_check_dry_run_reports_every_part(tmp_path: Path) -> None:
    from benchmarks import gpu_check

    args = argparse.Namespace(dry_run=True, device="cuda", size=256, generator="unet_256",
                              batches=[1, 16], steps=10, track_steps=200, infer_batch=16,
                              compile=True, warmup=3)  # fmt: skip
    result = gpu_check.run(args)
    assert result["dry_run"] and result["training"]["batch_1"]["auto"]["speedup"] > 0
    fp32, bf16 = result["precision"]["fp32"], result["precision"]["bf16"]
    # the mean over the 3 tracked steps of |bf16 - fp32| bounds the first and last terms
    for key in ("first_l1", "final_l1"):
        assert bf16["mean_abs_diff_vs_fp32"] >= abs(bf16[key] - fp32[key]) / 3 > 0, key
    assert "bf16" in result["precision"] and result["checks"]["all_reduce_ok"]


def test_data_path_benchmark_measures_each_rank_of_each_setting(tmp_path: Path) -> None:
    from benchmarks import data_path

    data = write_aligned(tmp_path / "data", count=6)
    args = argparse.Namespace(data=str(data), ranks=[1, 2], epochs=1, size=32, batch_size=1,
                              workers=0, cache="off")  # fmt: skip
    result = data_path.run(args)
    assert [len(s["per_rank_ips"]) for s in result["settings"]] == [1, 2]
    assert all(v > 0 and math.isfinite(v) for s in result["settings"] for v in s["per_rank_ips"])
    assert "| 2 |" in data_path.table(result)


def test_ablation_trains_scores_and_tabulates_variants_without_a_segmenter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import ablation

    for split in ("train", "test"):
        write_aligned(tmp_path / "data" / split, count=4, size=32, seed=len(split))
    out = tmp_path / "abl"
    argv = ["ablation", "--data", str(tmp_path / "data"), "--out", str(out), "--size", "32",
            "--epochs", "2", "--direction", "AtoB", "--segmenter-epochs", "0",
            "--only", "paper,resize_conv", "--precision", "fp32",
            "--picture", str(tmp_path / "grid.png")]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    ablation.main()
    results = json.loads((out / "ablation.json").read_text())
    assert [r["name"] for r in results] == ["paper", "resize_conv"]
    assert all(r["steps"] == 8 and math.isfinite(r["evaluation"]["fid"]) for r in results)
    config = json.loads((out / "resize_conv" / "run" / "latest" / "config.json").read_text())
    assert config["config"]["model"]["upsample"] == "resize-conv"
    assert config["config"]["data"]["direction"] == "AtoB" and not (out / "segmenter").exists()
    assert "| resize_conv | --upsample resize-conv |" in (out / "ablation.md").read_text()
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    rows = len(list((out / "paper" / "eval" / "images").glob("*_input.png")))
    assert grid.shape == (rows * 34 - 2, 4 * 34 - 2, 3)  # input | paper | resize_conv | target
    output = np.asarray(Image.open(out / "resize_conv" / "eval" / "outputs" / "1.png"))
    assert (grid[:32, 68:100] == output).all()


def test_whole_process_translation_benchmark_times_every_variant(tmp_path: Path) -> None:
    from benchmarks import translate_process

    args = argparse.Namespace(images=[1, 2], size=32, generator="unet_32", reps=1, eval=True,
                              out=str(tmp_path / "tp"), backends=True)  # fmt: skip
    result = translate_process.run(args)
    assert set(result["variants"]) == {
        "baseline", "ours, cold cache", "ours, warm cache", "ours fp32 (no native bf16), warm",
        "onnxruntime, warm", "onnxruntime int8, warm",
    }  # fmt: skip
    cache = tmp_path / "tp" / "cache" / "aot"
    # primed: auto's package and fp32's (the same one where the CPU has no native bf16)
    assert len(list(cache.glob("*.pt2"))) == (2 if native_bf16("cpu") else 1)
    assert len(list(cache.glob("*.onnx"))) == 2  # float32 and int8
    assert not (tmp_path / "tp" / "empty" / "aot").exists()  # cold: never built
    for name in ("base2", "ours2"):
        assert len(list((tmp_path / "tp" / name).glob("*.png"))) == 2
    assert "| ours, warm cache |" in translate_process.table(result)


def test_whole_process_training_benchmark_times_both_variants(tmp_path: Path) -> None:
    from benchmarks import train_process

    write_aligned(tmp_path / "data" / "train", count=3, size=32)
    args = argparse.Namespace(data=str(tmp_path / "data"), steps=[1, 3], size=32, reps=1,
                              out=str(tmp_path / "bench"))  # fmt: skip
    result = train_process.run(args)
    assert set(result["variants"]) == {"baseline", "ours"}
    for v in result["variants"].values():
        assert v["per_step_s"] == pytest.approx((v["wall_s"]["3"] - v["wall_s"]["1"]) / 2)
    base, ours = result["variants"]["baseline"], result["variants"]["ours"]
    assert ours["per_step_speedup"] == pytest.approx(base["per_step_s"] / ours["per_step_s"])
    for n, wall in ours["wall_s"].items():
        assert ours["wall_speedup"][n] == pytest.approx(base["wall_s"][n] / wall)
    assert list((tmp_path / "bench").iterdir()) == []  # the runs went with their temp folder
    assert "| ours |" in train_process.table(result)
    a, b = train_process.plain_pair(sorted((tmp_path / "data" / "train").iterdir())[0], 32,
                                    np.random.default_rng(0))  # fmt: skip
    assert a.shape == b.shape == (3, 32, 32) and a.min() >= -1 and a.max() <= 1
