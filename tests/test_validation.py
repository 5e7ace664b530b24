"""Validation during training: hold-out, best/ following the metric, exact resume, reports."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from conftest import tiny_config, write_aligned
from pix2pix.checkpoint import GENERATOR_FILE, load_weights, open_checkpoint, read_meta
from pix2pix.config import MonitorConfig, RunConfig
from pix2pix.data.pairs.datasets import PairedDataset
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.data.pairs.holdout import holdout_indices, split_holdout
from pix2pix.errors import ConfigError, UserError
from pix2pix.evaluation.evaluate import evaluate
from pix2pix.nets import build_generator
from pix2pix.training.loop import fit
from pix2pix.training.runlog import read_log
from pix2pix.training.validation import Validator
from test_train import assert_same_weights


def test_holdout_is_seeded_and_leaves_training_pairs() -> None:
    held = holdout_indices(20, 0.25, seed=3)
    assert held == holdout_indices(20, 0.25, seed=3) and len(held) == 5
    assert held != holdout_indices(20, 0.25, seed=4)
    assert len(holdout_indices(2, 0.9, 0)) == 1  # one pair is always left to train on
    assert len(holdout_indices(50, 0.001, 0)) == 1


def test_training_never_sees_the_held_out_pairs(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=8)
    cfg = tiny_config(data, monitor={"val_fraction": 0.25}, model={"in_channels": 3,
                      "out_channels": 3})  # fmt: skip
    full = PairedDataset(cfg.data, 3, 3)
    train, held = split_holdout(full, cfg)
    assert len(train) == 6 and len(held) == 2
    seen = {train[(e, i)]["index"] for e in range(3) for i in range(len(train))}
    held_indices = {full.pairs.index(p) for p in held}
    assert seen.isdisjoint(held_indices) and len(seen) == 6


def test_monitor_config_checks_its_values() -> None:
    with pytest.raises(ConfigError, match="val_metric 'lpips' is not valid; choose one of: l1"):
        MonitorConfig(val_metric="lpips")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="use one of them"):
        MonitorConfig(val_data="x", val_fraction=0.1)
    with pytest.raises(ConfigError, match="val_fraction 1.0"):
        MonitorConfig(val_fraction=1.0)


def test_missing_validation_folder_is_named_before_training(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=4)
    cfg = tiny_config(data, monitor={"val_data": str(tmp_path / "nope")})
    with pytest.raises(UserError, match=r"nope: dataset folder not found; check val_data"):
        fit(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("metric", "higher"), [("l1", False), ("psnr", True), ("ssim", True)])
def test_improvement_follows_the_metrics_direction(metric: str, higher: bool) -> None:
    v = Validator.__new__(Validator)
    v.metric, v.best = metric, None
    assert v.improved({metric: 0.5})
    v.best = {"metric": metric, "value": 0.5, "step": 1}
    assert v.improved({metric: 0.6}) is higher
    assert v.improved({metric: 0.4}) is not higher
    assert not v.improved({metric: 0.5})
    v.best = {"metric": "mse", "value": 0.0, "step": 1}  # another metric: start afresh
    assert v.improved({metric: 0.5})


def _val_run(root: Path, metric: str) -> RunConfig:
    """6 training pairs (3 steps an epoch) for 4 epochs, validating every 2 steps."""
    return tiny_config(root, monitor={"val_fraction": 0.25, "val_every": 2, "val_metric": metric})


def check_best(run: Path, metric: str, pick: Callable) -> None:
    records = read_log(run / "val.jsonl")
    assert [r["step"] for r in records] == list(range(2, 13, 2))
    best = pick(records, key=lambda r: r[metric])
    assert read_meta(run / "best")[1].step == best["step"]
    assert sorted(p.name for p in (run / "best").iterdir()) == [
        "README.md",
        "config.json",
        GENERATOR_FILE,
    ]
    saved = open_checkpoint(run / "best").metadata["validation"]
    assert saved["best"] == {"metric": metric, "value": best[metric], "step": best["step"]}
    assert open_checkpoint(run / "latest").metadata["validation"]["best"]["step"] == best["step"]


def test_best_checkpoint_follows_a_higher_is_better_metric(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=8)
    fit(_val_run(data, "psnr"), tmp_path / "run")
    check_best(tmp_path / "run", "psnr", max)


def test_validation_keeps_resume_exact_and_the_best_survives_it(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=8)
    cfg = _val_run(data, "l1")
    fit(cfg, tmp_path / "whole")
    fit(cfg.replace(train={"max_steps": 5}), tmp_path / "split")  # stop mid-epoch
    fit(cfg, tmp_path / "split", resume=True)
    check_best(tmp_path / "whole", "l1", min)  # lower is better
    assert_same_weights(tmp_path / "whole" / "latest", tmp_path / "split" / "latest")
    strip = lambda rs: [{k: v for k, v in r.items() if k != "sec"} for r in rs]  # noqa: E731
    whole = strip(read_log(tmp_path / "whole" / "val.jsonl"))
    assert whole == strip(read_log(tmp_path / "split" / "val.jsonl"))
    best = open_checkpoint(tmp_path / "whole" / "best").metadata["validation"]["best"]
    assert open_checkpoint(tmp_path / "split" / "best").metadata["validation"]["best"] == best
    weights = [(tmp_path / r / "best" / GENERATOR_FILE).read_bytes() for r in ("whole", "split")]
    assert weights[0] == weights[1]


def test_validation_leaves_the_generator_as_it_was(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=4)
    cfg = tiny_config(data, monitor={"val_data": str(data)}, model={"in_channels": 3,
                      "out_channels": 3})  # fmt: skip
    from pix2pix.nets import build_generator

    g = build_generator(cfg.model).train()
    state = {k: v.clone() for k, v in g.state_dict().items()}
    rng = torch.get_rng_state()
    v = Validator(cfg, split_holdout(PairedDataset(cfg.data, 3, 3), cfg)[1])
    first = v.evaluate(g, g.stride, torch.device("cpu"))
    assert first == v.evaluate(g, g.stride, torch.device("cpu"))  # seeded per pair
    assert g.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(state[k], v) for k, v in g.state_dict().items())  # BN stats too
    assert set(first) == {"l1", "mse", "psnr", "ssim", "ms_ssim"}


def test_run_report_with_curves_and_tensorboard(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=8)
    run = tmp_path / "run"
    cfg = tiny_config(
        data,
        train={"epochs": 1, "decay_epochs": 1, "sample_every": 3},
        monitor={"val_fraction": 0.25, "report": True, "tensorboard": True},
    )
    fit(cfg, run)
    page = (run / "report.html").read_text()
    links = re.findall(r'src="([^"]+)"', page)
    assert "plots/losses.png" in links and "plots/validation.png" in links
    assert all((run / link).is_file() for link in links)
    assert any(link.startswith("samples/") for link in links)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_tensorboard_without_its_package_is_refused_before_any_file(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    data = write_aligned(tmp_path / "data", count=4)
    cfg = tiny_config(data, monitor={"tensorboard": True, "val_fraction": 0.25})
    with pytest.raises(ConfigError, match=r"pip install 'pix2pix\[tensorboard\]'"):
        fit(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("eval_mode", [False, True])
def test_validation_and_evaluate_report_the_same_numbers(
    tmp_path: Path, precision: str, eval_mode: bool
) -> None:
    # one scoring path: best/ is chosen on exactly the numbers `evaluate` reports
    data = write_aligned(tmp_path / "data", count=4)
    held = write_aligned(tmp_path / "held", count=3, seed=9)
    cfg = tiny_config(data, model={"generator": "unet_64"}, data={"load_size": 72, "crop_size": 64},
                      train={"max_steps": 2}, monitor={"val_data": str(held)})  # fmt: skip
    fit(cfg, tmp_path / "run")
    saved, _ = read_meta(tmp_path / "run" / "latest")
    g = build_generator(saved.model, init=False)
    load_weights(g, tmp_path / "run" / "latest" / GENERATOR_FILE).train()
    validator = Validator(saved.replace(monitor={"val_eval": eval_mode}), find_pairs(held))
    val = validator.evaluate(g, g.stride, torch.device("cpu"), precision)
    _, summary = evaluate(tmp_path / "run", held, tmp_path / "report", eval_mode=eval_mode,
                          device="cpu", precision=precision, progress=False)  # fmt: skip
    assert val.keys() == summary["mean"].keys()
    assert val == summary["mean"]  # the same function on the same cast weights: equal
