"""The training-health diagnostics: each warning, once per episode, with its advice in the
log."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pix2pix.training.health import Health
from pix2pix.training.runlog import RunLog, read_log


def _feed(health: Health, steps: int, record: dict, fake=None, target=None) -> list[str]:
    due = []
    for i in range(steps):
        t = torch.full((1, 1, 2, 2), float(i)) if target is None else target(i)
        f = t if fake is None else fake(i)
        due += health.after_step({"step": i, **record}, f, t)
    return due


def test_health_warns_once_when_d_wins_and_again_after_recovery() -> None:
    health = Health(window=5)
    assert _feed(health, 4, {"loss_d": 0.001}) == []
    assert _feed(health, 10, {"loss_d": 0.001}) == ["d_wins"]
    assert _feed(health, 1, {"loss_d": 0.5}) == []
    assert _feed(health, 5, {"loss_d": 0.001}) == ["d_wins"]


def test_health_warns_on_a_perfect_d() -> None:
    assert _feed(Health(window=3), 3, {"d_acc": 1.0}) == ["d_perfect"]
    assert _feed(Health(window=3), 9, {"d_acc": 0.9}) == []


def test_health_warns_when_l1_stops_falling() -> None:
    health = Health(plateau=2, patience=2)
    falling = [health.after_step({"loss_g_l1": 1.0 / (i + 1)}, torch.zeros(1), torch.ones(1))
               for i in range(20)]  # fmt: skip
    assert not any(falling)
    assert _feed(health, 4, {"loss_g_l1": 1.0}) == ["l1_plateau"]


def test_health_warns_when_outputs_stop_depending_on_the_input() -> None:
    constant = lambda i: torch.zeros(1, 1, 2, 2)  # noqa: E731
    assert _feed(Health(window=3), 4, {}, fake=constant) == ["collapse"]
    assert _feed(Health(window=3), 10, {}) == []  # outputs follow the targets


def test_health_warnings_reach_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runlog = RunLog(tmp_path / "log.jsonl")
    health = Health(window=2)
    for i in range(2):
        health.check({"step": i + 1, "loss_d": 0.0}, torch.zeros(1), torch.zeros(1), runlog)
    runlog.close()
    warnings = [r for r in read_log(tmp_path / "log.jsonl") if "warning" in r]
    assert [(w["step"], w["warning"]) for w in warnings] == [(2, "d_wins")]
    assert "--spectral-norm" in caplog.text
