"""Weights & Biases logging, offline: the run's files written locally, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import tiny_config
from pix2pix.training.loop import fit


def test_wandb_offline_logs_losses_validation_and_samples(
    aligned_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monitor = {"wandb": "facades", "val_fraction": 0.34, "val_every": 2}
    cfg = tiny_config(aligned_data, train={"max_steps": 4, "sample_every": 2}, monitor=monitor)
    fit(cfg, tmp_path / "run")
    (run,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (log,) = run.glob("run-*.wandb")
    data = log.read_bytes()
    for key in (b"train/loss_d", b"train/loss_g_l1", b"train/lr", b"val/l1", b"samples"):
        assert key in data, key
    assert b"facades" in data  # the project
    assert list((run / "files" / "media" / "images").glob("samples_*.png"))


def test_wandb_flag_alone_names_the_default_project() -> None:
    from pix2pix.cli import build_parser

    args = build_parser().parse_args(["train", "--out", "r", "--wandb"])
    assert getattr(args, "monitor.wandb") == "pix2pix"
    args = build_parser().parse_args(["train", "--out", "r", "--wandb", "maps"])
    assert getattr(args, "monitor.wandb") == "maps"
