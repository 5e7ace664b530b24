"""Training: paper-order step, D frozen in the G step, schedule, files, exact resume."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from conftest import tiny_config, write_aligned
from pix2pix.checkpoint import TRAINING_FILES, read_meta
from pix2pix.config import RunConfig
from pix2pix.errors import ConfigError, UserError
from pix2pix.lock import LOCK_NAME, FolderLocked
from pix2pix.training.loop import fit
from pix2pix.training.runlog import read_log
from pix2pix.training.trainer import Trainer, lr_factor


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return {
        **{f"g.{k}": v for k, v in load_file(ckpt / "generator.safetensors").items()},
        **{f"d.{k}": v for k, v in load_file(ckpt / "discriminator.safetensors").items()},
    }


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, different[:5]


def trainer(cfg: RunConfig) -> Trainer:
    cfg = cfg.replace(model={"in_channels": 3, "out_channels": 3})
    torch.manual_seed(0)
    return Trainer(cfg, torch.device("cpu"))


def test_lr_is_constant_then_decays_linearly_to_zero() -> None:
    factors = [lr_factor(e, epochs=2, decay_epochs=3) for e in range(5)]
    assert factors == pytest.approx([1, 1, 0.75, 0.5, 0.25])
    assert lr_factor(5, 2, 3) == 0.0


def test_one_batch_overfits(aligned_data: Path) -> None:
    t = trainer(tiny_config(aligned_data, train={"lr": 2e-3}))  # a higher LR: fewer steps
    torch.manual_seed(1)
    a = F.interpolate(torch.rand(2, 3, 8, 8) * 2 - 1, scale_factor=4.0)  # blocky input
    b = 0.25 - 0.5 * a.flip(1)  # a pixelwise mapping the U-Net can fit
    first = t.step(a, b)[0]["loss_g_l1"].item()
    for _ in range(40):
        losses, _ = t.step(a, b)
    assert losses["loss_g_l1"].item() < 0.3 * first


def test_generator_step_leaves_the_discriminator_untouched(aligned_data: Path) -> None:
    t = trainer(tiny_config(aligned_data))
    m = t.method
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with t.autocast():
        fake = m.generate(a)
    g_before = [p.detach().clone() for p in t.g.parameters()]
    m.d_step(a, b, fake)
    assert all(torch.equal(p, q) for p, q in zip(g_before, t.g.parameters()))  # D step: G fixed
    d_params = [p.detach().clone() for p in m.d.parameters()]
    d_grads = [p.grad.clone() for p in m.d.parameters()]
    m.g_step(a, b, fake)
    assert all(torch.equal(p, q) for p, q in zip(d_params, m.d.parameters()))
    assert all(torch.equal(g, p.grad) for g, p in zip(d_grads, m.d.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(g_before, t.g.parameters()))
    assert all(p.requires_grad for p in m.d.parameters())  # unfrozen for the next D step


def test_fit_writes_checkpoints_logs_and_samples(aligned_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(aligned_data, train={"sample_every": 2, "keep_every": 2})
    run = tmp_path / "run"
    final = fit(cfg, run)
    assert final == run / "latest"
    modules = ["generator.safetensors", "discriminator.safetensors"]
    assert sorted(p.name for p in final.iterdir()) == sorted(
        [*TRAINING_FILES, *modules, "README.md"]
    )
    saved, progress = read_meta(final)
    assert saved.model.in_channels == 3  # resolved from the data
    assert (progress.step, progress.epoch, progress.batch_in_epoch) == (12, 4, 0)  # 6 imgs / 2
    assert (run / "epoch_0002").is_dir() and (run / "epoch_0004").is_dir()
    records = read_log(run / "log.jsonl")
    assert [r["step"] for r in records] == list(range(1, 13))
    assert {"loss_d", "loss_d_real", "loss_d_fake", "loss_g_gan", "loss_g_l1", "lr"} <= set(
        records[0]
    )
    # LR: constant for 2 epochs of 3 steps, then 2/3 and 1/3 of 2e-4
    assert [records[i]["lr"] for i in (0, 5, 6, 9)] == pytest.approx(
        [2e-4, 2e-4, 2e-4 * 2 / 3, 2e-4 / 3]
    )
    assert len(list((run / "samples").glob("step_*.png"))) == 6
    assert not list(run.glob(".*"))  # no temp folders left behind


def test_max_steps_stops_with_a_checkpoint(aligned_data: Path, tmp_path: Path) -> None:
    fit(tiny_config(aligned_data, train={"max_steps": 4}), tmp_path / "run")
    _, progress = read_meta(tmp_path / "run" / "latest")
    assert (progress.step, progress.epoch, progress.batch_in_epoch) == (4, 1, 1)


def test_max_steps_at_an_epoch_end_finishes_that_epoch(
    aligned_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pix2pix")
    cfg = tiny_config(aligned_data)  # 3 steps per epoch, 4 epochs
    fit(cfg.replace(train={"max_steps": 3}), tmp_path / "run")
    _, progress = read_meta(tmp_path / "run" / "latest")
    assert (progress.step, progress.epoch, progress.batch_in_epoch) == (3, 1, 0)
    assert "epoch 1/4" in caplog.text and "--max-steps reached at step 3" in caplog.text
    caplog.clear()
    fit(cfg.replace(train={"max_steps": 12}), tmp_path / "run", resume=True)  # the schedule's end
    _, progress = read_meta(tmp_path / "run" / "latest")
    assert (progress.step, progress.epoch, progress.batch_in_epoch) == (12, 4, 0)
    assert "epoch 4/4" in caplog.text and "continue with --resume" not in caplog.text


def test_resume_equals_an_uninterrupted_run(aligned_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(aligned_data)
    fit(cfg, tmp_path / "whole")
    fit(cfg.replace(train={"max_steps": 5}), tmp_path / "split")  # stop mid-epoch
    fit(cfg.replace(train={"max_steps": 9}), tmp_path / "split", resume=True)  # epoch end
    fit(cfg, tmp_path / "split", resume=True)
    assert_same_weights(tmp_path / "whole" / "latest", tmp_path / "split" / "latest")
    whole, split = (
        read_log(tmp_path / "whole" / "log.jsonl"),
        read_log(tmp_path / "split" / "log.jsonl"),
    )
    strip = lambda rs: [{k: v for k, v in r.items() if k != "sec"} for r in rs]  # noqa: E731
    assert strip(whole) == strip(split)


def test_seed_makes_runs_reproducible(aligned_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(aligned_data, train={"max_steps": 3})
    fit(cfg, tmp_path / "a")
    fit(cfg, tmp_path / "b")
    fit(cfg.replace(train={"seed": 1}), tmp_path / "c")
    assert_same_weights(tmp_path / "a" / "latest", tmp_path / "b" / "latest")
    with pytest.raises(AssertionError):
        assert_same_weights(tmp_path / "a" / "latest", tmp_path / "c" / "latest")


def test_fit_leaves_the_global_rng_alone(aligned_data: Path, tmp_path: Path) -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    fit(tiny_config(aligned_data, train={"max_steps": 2}), tmp_path / "run")
    assert torch.equal(torch.get_rng_state(), state)


def test_existing_run_needs_resume_and_resume_needs_same_settings(
    aligned_data: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(aligned_data, train={"max_steps": 2})
    fit(cfg, tmp_path / "run")
    with pytest.raises(UserError, match="already holds a checkpoint; pass resume"):
        fit(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match=r"ngf 16 \(checkpoint: 8\)"):
        fit(cfg.replace(model={"ngf": 16}), tmp_path / "run", resume=True)
    with pytest.raises(UserError, match="no such checkpoint"):
        fit(cfg, tmp_path / "other", resume=True)


def test_stop_request_saves_and_returns(aligned_data: Path, tmp_path: Path) -> None:
    calls = []
    fit(
        tiny_config(aligned_data),
        tmp_path / "run",
        should_stop=lambda: calls.append(1) or len(calls) >= 3,
    )
    _, progress = read_meta(tmp_path / "run" / "latest")
    assert progress.step == 3


def test_bf16_autocast_trains(aligned_data: Path, tmp_path: Path) -> None:
    # the same run in fp32 and in bf16: the bf16 losses track fp32's (bf16 keeps 8
    # significant bits) but are not fp32's (autocast really ran)
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = tiny_config(aligned_data, train={"max_steps": 4, "precision": precision})
        fit(cfg, tmp_path / precision)
        losses[precision] = read_log(tmp_path / precision / "log.jsonl")
    fp32, bf16 = losses["fp32"], losses["bf16"]
    assert [r["step"] for r in bf16] == [1, 2, 3, 4]
    for a, b in zip(fp32, bf16):
        assert b["loss_g_l1"] == pytest.approx(a["loss_g_l1"], rel=0.05)
        assert b["loss_d"] == pytest.approx(a["loss_d"], abs=0.05)
    assert any(a["loss_g_l1"] != b["loss_g_l1"] for a, b in zip(fp32, bf16))
    w32, w16 = weights(tmp_path / "fp32" / "latest"), weights(tmp_path / "bf16" / "latest")
    # autocast computes in bf16; the weights it updates stay fp32
    assert all(v.dtype == torch.float32 for v in w16.values() if v.is_floating_point())
    assert any(not torch.equal(w32[k], w16[k]) for k in w32)


# ------------------------------------------------------------ kill -9 and resume


def _train_cmd(data: Path, out: Path) -> list[str]:
    # unet_64: the smallest U-Net with dropout, so the resumed run matches only if the
    # checkpoint restored the RNG that draws the dropout masks
    return [
        sys.executable, "-m", "pix2pix", "-q", "train", "--out", str(out), "--data", str(data),
        "--generator", "unet_64", "--ngf", "8", "--ndf", "8", "--load-size", "72",
        "--crop-size", "64", "--batch-size", "2", "--epochs", "30", "--decay-epochs", "30",
        "--workers", "0", "--save-every", "7", "--sample-every", "0", "--keep-every", "0",
        "--device", "cpu", "--seed", "5", "--no-progress", "--no-report",
    ]  # fmt: skip


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data", count=8)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_train_cmd(data, tmp_path / "ref"), check=True, env=env, timeout=300)

    run = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(data, run), env=env)
    log = run / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 30:
            break
        time.sleep(0.01)  # polling the log for progress, not waiting for an outcome
    assert proc.poll() is None, "the run ended before it could be killed"
    saved, _ = read_meta(run / "latest")
    assert saved.model.dropout > 0 and saved.model.generator == "unet_64"
    # a second writer is refused while the run is alive, naming it; nothing is touched
    log_before = log.read_bytes()
    with pytest.raises(FolderLocked, match=rf"run folder {run} is in use by pid {proc.pid}"):
        fit(saved, run, resume=True)
    assert log.read_bytes()[: len(log_before)] == log_before
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _, progress = read_meta(run / "latest")
    assert 0 < progress.step < 240
    assert (run / LOCK_NAME).exists()  # the killed run's lock file: no lock, no obstacle

    subprocess.run(
        [*_train_cmd(data, run)[:5], "--out", str(run), "--resume"],
        check=True,
        env=env,
        timeout=300,
    )
    assert_same_weights(tmp_path / "ref" / "latest", run / "latest")
    steps = [r["step"] for r in read_log(run / "log.jsonl")]
    assert steps == list(range(1, 241))
    assert json.loads((run / "latest" / "config.json").read_text())["progress"]["step"] == 240


def test_d_has_its_own_learning_rate_on_the_same_schedule(aligned_data: Path) -> None:
    lrs = {"lr": 2e-4, "lr_d": 1e-3, "epochs": 2, "decay_epochs": 2}
    t = trainer(tiny_config(aligned_data, train=lrs))

    def lr(t: Trainer, name: str) -> float:
        return t.method.optimizers[name][0].param_groups[0]["lr"]

    assert lr(t, "g") == 2e-4 and lr(t, "d") == 1e-3
    t.set_epoch(3)  # the last decay epoch: both scaled by the same factor (1/3)
    assert lr(t, "g") == pytest.approx(2e-4 * lr_factor(3, 2, 2))
    assert lr(t, "d") == pytest.approx(1e-3 * lr_factor(3, 2, 2))
    paper = trainer(tiny_config(aligned_data))
    assert lr(paper, "d") == lr(paper, "g") == 2e-4
    with pytest.raises(ConfigError, match="lr_d -1.0 is out of range"):
        tiny_config(aligned_data, train={"lr_d": -1.0})


def test_hinge_loss_values_on_known_d_outputs() -> None:
    from pix2pix.losses import discriminator_loss, generator_loss

    real = torch.tensor([2.0, 0.5, -1.0]).view(1, 1, 1, 3)  # relu(1 - x): 0, 0.5, 2
    fake = torch.tensor([-2.0, 0.0, 1.0]).view(1, 1, 1, 3)  # relu(1 + x): 0, 1, 2
    total, loss_real, loss_fake = discriminator_loss(real, fake, "hinge")
    assert loss_real.item() == pytest.approx(2.5 / 3) and loss_fake.item() == pytest.approx(1.0)
    assert total.item() == pytest.approx(0.5 * (2.5 / 3 + 1.0))
    assert generator_loss(fake, "hinge").item() == pytest.approx(1 / 3)  # -mean(D(fake))
    # two scales: the mean of each scale's loss (the second scale's: 0, 0, 3 and 0, 1, 3)
    total2, _, _ = discriminator_loss([real, real * 2], [fake, fake * 2], "hinge")
    assert total2.item() == pytest.approx(0.5 * ((2.5 / 3 + 1.0) / 2 + (1.0 + 4 / 3) / 2))


def test_hinge_loss_trains_and_resumes(aligned_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(aligned_data, train={"gan_loss": "hinge", "lr_d": 4e-4, "max_steps": 2})
    fit(cfg, tmp_path / "run")
    fit(cfg.replace(train={"max_steps": 4}), tmp_path / "run", resume=True)
    saved, progress = read_meta(tmp_path / "run" / "latest")
    assert progress.step == 4 and saved.train.gan_loss == "hinge" and saved.train.lr_d == 4e-4
    losses = read_log(tmp_path / "run" / "log.jsonl")
    assert [r["step"] for r in losses] == [1, 2, 3, 4]
    # step 1 scores the same D outputs (same seed, weights and batch) as a vanilla run,
    # with another formula: the run used the hinge loss
    fit(cfg.replace(train={"gan_loss": "vanilla", "max_steps": 1}), tmp_path / "vanilla")
    vanilla = read_log(tmp_path / "vanilla" / "log.jsonl")[0]
    for key in ("loss_d_real", "loss_d_fake"):
        assert abs(losses[0][key] - vanilla[key]) > 0.01, key


def test_spectral_norm_trains_saves_and_resumes(aligned_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(aligned_data, model={"spectral_norm": True}, train={"max_steps": 2})
    fit(cfg, tmp_path / "run")
    d_keys = set(load_file(tmp_path / "run" / "latest" / "discriminator.safetensors"))
    assert any(k.endswith("parametrizations.weight.original") for k in d_keys)
    fit(cfg.replace(train={"max_steps": 3}), tmp_path / "run", resume=True)  # loads strictly
    saved, progress = read_meta(tmp_path / "run" / "latest")
    assert progress.step == 3 and saved.model.spectral_norm
    with pytest.raises(ConfigError, match="spectral_norm False"):  # what is trained: fixed
        fit(cfg.replace(model={"spectral_norm": False}, train={"max_steps": 4}),
            tmp_path / "run", resume=True)  # fmt: skip
