"""Multi-process training: 2 CPU processes (gloo) started by torchrun, as users start them.

Each launch trains a tiny model for a few steps (seconds); every launch has a timeout, so
a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import itertools
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from conftest import tiny_config, write_aligned, write_labels
from ddp_launch import ENV, LAUNCH_TIMEOUT, PAPER, TESTS, TINY, finish, launch, torchrun
from pix2pix.checkpoint import Progress, read_meta
from pix2pix.config import RunConfig
from pix2pix.nets import build_discriminator, build_generator
from pix2pix.training.loop import fit
from pix2pix.training.runlog import read_log
from pix2pix.translate import Pix2Pix


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return {
        **{f"g.{k}": v for k, v in load_file(ckpt / "generator.safetensors").items()},
        **{f"d.{k}": v for k, v in load_file(ckpt / "discriminator.safetensors").items()},
    }


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def weights_at_init(cfg: RunConfig) -> dict[str, torch.Tensor]:
    cfg = cfg.replace(model={"in_channels": 3, "out_channels": 3})
    torch.manual_seed(cfg.train.seed)
    g, d = build_generator(cfg.model), build_discriminator(cfg.model)
    return {
        **{f"g.{k}": v for k, v in g.state_dict().items()},
        **{f"d.{k}": v for k, v in d.state_dict().items()},
    }


def build_d(cfg: RunConfig) -> nn.Module:
    return build_discriminator(cfg.replace(model={"in_channels": 3, "out_channels": 3}).model)


def normalised_away(net: nn.Module, prefix: str) -> set[str]:
    """Keys of conv biases followed by instance norm, which subtracts them right away.

    Their gradient is zero up to rounding, and Adam scales that rounding noise up to
    full-size steps, so they drift apart between any two runs that round differently
    (1 process vs 2) while the function the network computes does not change.
    """
    keys = set()
    for name, seq in net.named_modules():
        if isinstance(seq, nn.Sequential):
            for i, (layer, nxt) in enumerate(itertools.pairwise(seq)):
                conv = isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d))
                if conv and layer.bias is not None and isinstance(nxt, nn.InstanceNorm2d):
                    keys.add(f"{prefix}{name}.{i}.bias".replace("..", "."))
    return keys


# ------------------------------------------------------------ launches

# Instance norm normalises each image on its own and dropout 0 removes the only noise
# drawn per rank (augmentation is a function of (seed, epoch, index)), so with DDP
# averaging the per-rank mean gradients, 2 ranks x 2 images take the same steps as
# 1 process x 4 images, up to float rounding.
MATCHING = [
    "--norm", "instance", "--dropout", "0", "--epochs", "2", "--decay-epochs", "1",
    "--precision", "fp32",  # compared with one fp32 process to 1e-5 (auto: bf16 on some CPUs)
]  # fmt: skip
# PAPER (ddp_launch): batch norm and dropout; each rank draws its own dropout noise, so a
# resumed run equals the whole one only if the checkpoint restores every rank's RNG.
# Every option of issues 14 and 29 at once (the target registered by G's output, so it moves),
# in mixed precision (auto), 2 + 1 epochs = 6 steps.
IMPROVED = [
    "--recipe", "improved", "--spectral-norm", "--gan-loss", "hinge", "--r1-gamma", "1",
    "--r1-every", "2", "--d-scales", "2", "--discriminator", "patch_16",
    "--feature-matching", "10", "--lr-d", "4e-4", "--reconstruction-scale", "2",
    "--reconstruction", "aligned", "--align-shift", "2", "--align-guide", "output",
    "--ffl-weight", "1",
    "--nce-weight", "1", "--nce-layers", "0,2", "--nce-patches", "16",
    "--epochs", "2", "--decay-epochs", "1", "--seed", "5",
]  # fmt: skip


# BicycleGAN: G with a code, E, D and D2 (issue 27), the official defaults, 6 steps
BICYCLE = ["--method", "bicyclegan", "--discriminator", "patch_16", "--epochs", "2",
           "--decay-epochs", "1", "--seed", "7", "--mode-seeking", "1"]  # fmt: skip


# OASIS on label maps (issue 28): SPADE G with a code, the segmentation D, LabelMix
OASIS = ["--recipe", "oasis", "--labels", "palette", "--palette", "facades", "--direction",
         "BtoA", "--generator", "spade", "--epochs", "2", "--decay-epochs", "1",
         "--seed", "5"]  # fmt: skip


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One job, six runs: MATCHING into ddp/ (saving every 2 steps), PAPER into whole/,
    IMPROVED into improved_whole/ and, stopped after 3 of its 6 steps, improved_part/;
    BICYCLE likewise into bicycle_whole/ and bicycle_part/; OASIS on label maps into
    oasis/."""
    root = tmp_path_factory.mktemp("ddp")
    data = write_aligned(root / "data", count=8)
    matching = ["--out", root / "ddp", "--data", data, "--save-every", "2", *TINY, *MATCHING]
    paper = ["--out", root / "whole", "--data", data, *TINY, *PAPER]
    improved = ["--data", data, *TINY, *IMPROVED]
    part = ["--out", root / "improved_part", "--max-steps", "3", *improved]
    whole = ["--out", root / "improved_whole", *improved]
    bicycle = ["--data", data, *TINY, *BICYCLE]
    bicycle_part = ["--out", root / "bicycle_part", "--max-steps", "3", *bicycle]
    labels = write_labels(root / "labels", count=8)
    oasis = ["--out", root / "oasis", "--data", labels, *TINY, *OASIS]
    runs = [matching, paper, part, whole, ["--out", root / "bicycle_whole", *bicycle], bicycle_part,
            oasis]  # fmt: skip
    separated = [a for r in runs for a in ("::", *r)][1:]  # run :: run :: ...
    done = launch(TESTS / "ddp_worker.py", root / "dumps", *separated)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_two_ranks_stay_identical_and_match_one_process(launched: Path) -> None:
    data, run, dumps = launched / "data", launched / "ddp", launched / "dumps"
    # every rank holds the same weights at every save (steps 2, 4, 6 and epoch ends)
    saves = sorted(p.name for p in dumps.glob("run*_rank0_*"))
    assert len(saves) >= 3 + 24  # both runs
    for name in saves:
        rank0, rank1 = load_file(dumps / name), load_file(dumps / name.replace("rank0", "rank1"))
        params = [k for k in rank0 if not k.endswith(("running_mean", "running_var", "tracked"))]
        assert all(torch.equal(rank0[k], rank1[k]) for k in params), name

    # rank 0 alone wrote the log: each step once, with the global batch's losses
    records = read_log(run / "log.jsonl")
    assert [r["step"] for r in records] == list(range(1, 7))
    _, progress = read_meta(run / "latest")
    assert progress == Progress(step=6, epoch=3, batch_in_epoch=0, world_size=2)

    # one process, the same global batch of 4
    cfg = tiny_config(
        data,
        model={"norm": "instance", "dropout": 0.0},
        train={"epochs": 2, "decay_epochs": 1, "batch_size": 4},
    )
    one_run = launched / "one"
    fit(cfg, one_run)
    g_one, g_ddp = (Pix2Pix.load(r, device="cpu", precision="fp32") for r in (one_run, run))
    dead = normalised_away(g_one.generator, "g.") | normalised_away(build_d(cfg), "d.")
    one, ddp = weights(one_run / "latest"), weights(run / "latest")
    one, ddp = ({k: v for k, v in w.items() if k not in dead} for w in (one, ddp))
    initial = {k: v for k, v in weights_at_init(cfg).items() if k in one}
    assert max_difference(one, initial) > 1e-3  # training moved the weights ...
    assert max_difference(one, ddp) < 1e-5  # ... and 2 ranks moved them the same way
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(g_one.translate_tensor(x), g_ddp.translate_tensor(x), atol=1e-5)
    for a, b in zip(read_log(one_run / "log.jsonl"), records):
        assert a["loss_g_l1"] == pytest.approx(b["loss_g_l1"], rel=1e-4)
        assert a["loss_d"] == pytest.approx(b["loss_d"], rel=1e-4)

    # the checkpoint holds plain modules: it loaded above, in this one process, strictly
    saved = load_file(run / "latest" / "generator.safetensors")
    assert saved.keys() == g_ddp.generator.state_dict().keys()  # no "module." prefixes


def test_sigterm_stops_every_rank_and_resume_continues_the_run(
    launched: Path, tmp_path: Path
) -> None:
    data = launched / "data"
    flags = [*TINY, "--data", data, *PAPER]
    # SIGTERM to torchrun, as SLURM or Ctrl-C deliver it: torchrun passes it to every
    # worker; they agree on a step, rank 0 saves, all exit
    run = tmp_path / "run"
    cmd = torchrun("-m", "pix2pix", "train", "--out", run, *flags)
    proc = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log = run / "log.jsonl"
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 6:
            break
        time.sleep(0.01)  # polling the log for progress, not waiting for an outcome
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    output = finish(proc).stdout
    assert "checkpoint: " in output  # rank 0 returned from fit: past the final barrier
    assert "SIGKILL" not in output  # no worker had to be killed
    _, progress = read_meta(run / "latest")
    assert 6 <= progress.step < 48 and progress.world_size == 2
    assert [r["step"] for r in read_log(log)][-1] == progress.step

    # a single process can take the 2-process checkpoint over (when its position in
    # the epoch is a whole number of 1-process batches, as it is here)
    shutil.copytree(run, tmp_path / "single")
    cfg = tiny_config(data, train={"seed": 3, "epochs": 12, "decay_epochs": 12})
    fit(cfg.replace(train={"max_steps": progress.step + 2}), tmp_path / "single", resume=True)
    taken_over = read_meta(tmp_path / "single" / "latest")[1]
    assert (taken_over.step, taken_over.world_size) == (progress.step + 2, 1)

    resumed = launch("-m", "pix2pix", "train", "--out", run, "--resume")  # all else saved
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert max_difference(weights(launched / "whole" / "latest"), weights(run / "latest")) == 0
    assert [r["step"] for r in read_log(log)] == list(range(1, 49))


def test_improvement_options_keep_ranks_in_step_and_resume_exactly(launched: Path) -> None:
    # spectral norm's power iteration, R1's double backward, two D scales, feature
    # matching, DiffAugment drawn per rank and the EMA: every rank holds the same weights
    saves = sorted(p.name for p in (launched / "dumps").glob("run3_rank0_*"))
    assert len(saves) >= 3
    for name in saves:
        rank0 = load_file(launched / "dumps" / name)
        rank1 = load_file(launched / "dumps" / name.replace("rank0", "rank1"))
        assert any(k.startswith("ema.") for k in rank0)
        assert any(k.endswith("weight.0._u") for k in rank0)  # spectral norm's state
        params = [k for k in rank0 if not k.endswith(("running_mean", "running_var", "tracked"))]
        assert all(torch.equal(rank0[k], rank1[k]) for k in params), name
        # ... while DiffAugment draws each rank's own transforms
        rngs = [load_file(launched / "dumps" / f"augment_{name.replace('rank0', f'rank{r}')}")
                for r in (0, 1)]  # fmt: skip
        assert not torch.equal(rngs[0]["augment_rng"], rngs[1]["augment_rng"]), name
    whole, part = launched / "improved_whole", launched / "improved_part"
    cfg, progress = read_meta(whole / "latest")
    assert progress.step == 6 and cfg.train.recipe == "improved" and cfg.model.d_scales == 2
    assert read_meta(part / "latest")[1].step == 3

    # the stopped run, resumed by 2 processes, ends where the uninterrupted one did
    resumed = launch("-m", "pix2pix", "train", "--out", part, "--resume", "--max-steps", "0")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_meta(part / "latest")[1].step == 6
    ema = "generator_ema.safetensors"
    for ckpt in (whole / "latest", part / "latest"):
        assert (ckpt / ema).is_file()
    assert max_difference(weights(whole / "latest"), weights(part / "latest")) == 0
    averages = [load_file(c / "latest" / ema) for c in (whole, part)]
    assert all(torch.equal(averages[0][k], averages[1][k]) for k in averages[0])


def test_bicyclegan_keeps_ranks_in_step_and_resumes_exactly(launched: Path) -> None:
    # G, E, D, D2 and the average: every rank holds the same weights at every save
    saves = sorted(p.name for p in (launched / "dumps").glob("run4_rank0_*"))
    assert len(saves) >= 3
    for name in saves:
        rank0 = load_file(launched / "dumps" / name)
        rank1 = load_file(launched / "dumps" / name.replace("rank0", "rank1"))
        assert any(k.startswith("encoder.") for k in rank0)
        assert any(k.startswith("discriminator2.") for k in rank0)
        assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), name
    whole, part = launched / "bicycle_whole", launched / "bicycle_part"
    assert read_meta(part / "latest")[1].step == 3
    resumed = launch("-m", "pix2pix", "train", "--out", part, "--resume", "--max-steps", "0")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_meta(part / "latest")[1].step == read_meta(whole / "latest")[1].step == 6
    for module in ("generator", "encoder", "discriminator", "discriminator2"):
        a = load_file(whole / "latest" / f"{module}.safetensors")
        b = load_file(part / "latest" / f"{module}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), module


def test_oasis_keeps_ranks_in_step(launched: Path) -> None:
    # G (with its code), the segmentation D and the average; LabelMix's coins and the
    # codes are drawn per rank, the gradients averaged: every rank holds the same weights
    saves = sorted(p.name for p in (launched / "dumps").glob("run6_rank0_*"))
    assert len(saves) >= 3
    for name in saves:
        rank0 = load_file(launched / "dumps" / name)
        rank1 = load_file(launched / "dumps" / name.replace("rank0", "rank1"))
        assert any(k.startswith("d.head") for k in rank0)
        assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), name
    config, progress = read_meta(launched / "oasis" / "latest")
    assert (config.model.method, progress.step, progress.world_size) == ("oasis", 6, 2)
