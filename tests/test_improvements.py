"""Options beyond the paper's recipe (issue 14): what each computes, and that each trains,
is recorded and resumes exactly; the recipe. The training-health diagnostics: test_health."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from conftest import error_line, run_cli, tiny_config
from pix2pix.checkpoint import EMA_FILE, read_meta
from pix2pix.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from pix2pix.config.recipes import RECIPES
from pix2pix.errors import ConfigError
from pix2pix.losses import (
    adversarial_loss,
    feature_matching_loss,
    r1_penalty,
    reconstruction_loss,
)
from pix2pix.methods.augment import augment_pairs
from pix2pix.nets import MultiScaleDiscriminator, PatchDiscriminator, UNet, build_discriminator
from pix2pix.training.ema import WeightAverage, ema_decay_at
from pix2pix.training.loop import fit
from pix2pix.training.runlog import read_log
from pix2pix.translate import Pix2Pix
from test_train import assert_same_weights

# --- EMA ---------------------------------------------------------------------------


def test_ema_warms_up_then_uses_the_decay() -> None:
    assert ema_decay_at(1, 0.999) == pytest.approx(2 / 11)
    assert ema_decay_at(10**6, 0.999) == 0.999


def test_ema_averages_weights_and_buffers_and_copies_counts() -> None:
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))
    avg = WeightAverage(net, 0.5)
    before = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.fill_(4.0)
        net[1].num_batches_tracked.fill_(7)
    avg.update(net, step=10**6)  # past the warm-up: d = 0.5
    torch.testing.assert_close(avg.module[0].weight, before + 0.5)
    torch.testing.assert_close(avg.module[1].running_mean, torch.tensor([2.0]))
    assert int(avg.module[1].num_batches_tracked) == 7
    assert not avg.module[0].weight.requires_grad


def test_ema_is_saved_resumed_and_used_for_inference(aligned_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(aligned_data, train={"ema_decay": 0.9})
    fit(cfg, tmp_path / "whole")
    fit(cfg.replace(train={"max_steps": 5}), tmp_path / "split")
    fit(cfg, tmp_path / "split", resume=True)
    a, b = (load_file(tmp_path / r / "latest" / EMA_FILE) for r in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    raw = load_file(tmp_path / "whole" / "latest" / "generator.safetensors")
    assert any(not torch.equal(a[k], raw[k]) for k in a if a[k].is_floating_point())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    ema = Pix2Pix.load(tmp_path / "whole", "cpu", precision="fp32")
    own = Pix2Pix.load(tmp_path / "whole", "cpu", precision="fp32", weights="raw")
    torch.testing.assert_close(ema.generator.state_dict()["encoder.0.0.weight"],
                               a["encoder.0.0.weight"])  # fmt: skip
    assert not torch.equal(ema.translate_tensor(x, eval_mode=True),
                           own.translate_tensor(x, eval_mode=True))  # fmt: skip


def test_weights_ema_without_an_average_is_a_one_line_error(
    aligned_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fit(tiny_config(aligned_data, train={"max_steps": 1}), tmp_path / "run")
    args = ["--checkpoint", tmp_path / "run", aligned_data / "1.png", "--out", tmp_path / "o"]
    code, _, err = run_cli(capsys, "translate", *args, "--weights", "ema")
    assert code == 2 and "has no generator_ema.safetensors" in error_line(err)


# --- DiffAugment ---------------------------------------------------------------------

POLICIES = [("translation",), ("cutout",), ("color",), ("translation", "cutout", "color")]


@pytest.mark.parametrize("policy", POLICIES)
def test_augment_applies_one_draw_to_real_and_fake_and_to_both_halves(policy) -> None:
    torch.manual_seed(0)
    a, b = torch.rand(2, 4, 3, 16, 16).unbind(0)
    fake, real = torch.cat([a, b], 1), torch.cat([a, a], 1)  # pairs sharing their input
    out_fake, out_real = augment_pairs([fake, real], policy, torch.Generator().manual_seed(1), 3)
    # the same transform for the real and the fake pair: their input halves stay equal
    torch.testing.assert_close(out_fake[:, :3], out_real[:, :3])
    # and each half of a pair moves as the halves would alone
    (alone,) = augment_pairs([torch.cat([b, b], 1)], policy, torch.Generator().manual_seed(1), 3)
    torch.testing.assert_close(out_fake[:, 3:], alone[:, 3:])
    assert not torch.equal(out_fake, fake)  # it did something


def test_augment_translation_shifts_and_cutout_zeroes_a_quarter() -> None:
    x = torch.rand(8, 2, 16, 16) + 1  # no zeros of its own
    (moved,) = augment_pairs([x], ("translation",), torch.Generator().manual_seed(0), 1)
    sums = sorted(float(s) for s in moved.flatten(1).sum(1) / x.flatten(1).sum(1))
    assert sums[-1] <= 1.0 + 1e-6 and sums[0] >= (14 / 16) ** 2 - 0.1  # shifted by <= 1/8
    (cut,) = augment_pairs([x], ("cutout",), torch.Generator().manual_seed(0), 1)
    zeros = (cut == 0).flatten(1).float().mean(1)
    assert float(zeros.max()) <= 0.25 + 1e-6 and float(zeros.mean()) > 0.1


def test_augment_is_differentiable_and_the_policy_is_checked() -> None:
    x = torch.rand(2, 6, 16, 16, requires_grad=True)
    (y,) = augment_pairs([x], ("translation", "cutout", "color"), torch.Generator(), 3)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="unknown augmentation 'flip'"):
        TrainConfig(augment="translation,flip")


# --- losses ------------------------------------------------------------------------


def test_r1_is_the_squared_input_gradient() -> None:
    w = torch.randn(1, 6, 1, 1)
    x = torch.rand(2, 6, 4, 4, requires_grad=True)
    logits = F.conv2d(x, w)  # d sum / dx = w at every pixel
    expected = (w.pow(2).sum() * 16).item()
    assert r1_penalty(logits, x).item() == pytest.approx(expected, rel=1e-5)
    assert r1_penalty(logits, x, scale=2.0**16).item() == pytest.approx(expected, rel=1e-5)


def test_r1_under_fp16_is_the_penalty_of_the_unscaled_gradient() -> None:
    # a D whose input gradient is ~1e-8 per pixel: below fp16's smallest number, so it
    # survives backward only through the loss scale (the GradScaler's, under fp16)
    from pix2pix.runtime import Speed
    from pix2pix.training.trainer import Trainer

    model = {"in_channels": 3, "out_channels": 3, "norm": "none", "dropout": 0.0}
    cfg = tiny_config("unused", model=model, train={"r1_gamma": 1.0, "r1_every": 1})
    torch.manual_seed(1)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    r1 = {}
    for precision in ("fp32", "fp16"):
        torch.manual_seed(0)
        trainer = Trainer(cfg, torch.device("cpu"), Speed(precision=precision))
        with torch.no_grad():
            for m in trainer.method.d.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.mul_(2**-2.5)
        r1[precision] = trainer.step(a, b)[0]["r1"].item()
    assert r1["fp32"] > 0 and r1["fp16"] == pytest.approx(r1["fp32"], rel=0.1, abs=0)


def test_reconstruction_l2_and_downscaled() -> None:
    fake, target = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4) * 0.5
    assert reconstruction_loss(fake, target, "l2").item() == pytest.approx(0.25)
    assert reconstruction_loss(fake, target, "l1").item() == pytest.approx(0.5)
    stripes = torch.zeros(1, 1, 4, 4)
    stripes[..., ::2] = 1.0
    shifted = stripes.roll(1, dims=-1)  # misregistered by one pixel
    assert reconstruction_loss(stripes, shifted).item() == pytest.approx(1.0)
    assert reconstruction_loss(stripes, shifted, scale=2).item() == pytest.approx(0.0)


def test_multiscale_discriminator_and_losses_over_scales() -> None:
    d = MultiScaleDiscriminator(3, 6, layers=2, ndf=4)
    out = d(torch.rand(1, 6, 64, 64))
    assert [o.shape[-1] for o in out] == [14, 6, 2]
    feats = d.features(torch.rand(1, 6, 64, 64))
    assert len(feats) == 3 and all(len(f) == 4 for f in feats)  # 3 activations + logits
    per_scale = [adversarial_loss(o, True) for o in out]
    assert adversarial_loss(out, True).item() == pytest.approx(torch.stack(per_scale).mean().item())
    cfg = ModelConfig(d_scales=2, in_channels=3, out_channels=3)
    assert isinstance(build_discriminator(cfg), MultiScaleDiscriminator)


def test_scales_too_coarse_for_the_crop_are_a_config_error() -> None:
    data = DataConfig(load_size=52, crop_size=48)
    RunConfig(model=ModelConfig(d_scales=2), data=data)  # 24x24 at the coarsest: enough
    with pytest.raises(ConfigError, match="coarsest discriminator sees 12x12, below the 24x24"):
        RunConfig(model=ModelConfig(d_scales=3), data=data)


def test_feature_matching_is_zero_on_equal_pairs_and_trains_only_g() -> None:
    d = PatchDiscriminator(6, 2, 4)
    real = torch.rand(1, 6, 32, 32)
    assert feature_matching_loss([d.features(real)], [d.features(real)]).item() == 0.0
    fake = torch.rand(1, 6, 32, 32, requires_grad=True)
    real_feats = [d.features(real.requires_grad_(True))]
    loss = feature_matching_loss([d.features(fake)], real_feats)
    loss.backward()
    assert loss.item() > 0 and fake.grad is not None and real.grad is None


# --- upsampling ----------------------------------------------------------------------


def test_resize_conv_upsampling_replaces_transposed_convs() -> None:
    def count(net: nn.Module, kind: type) -> int:
        return sum(isinstance(m, kind) for m in net.modules())

    paper, full, head = (UNet(3, 3, 5, 8, upsample=u) for u in ("transpose", "resize-conv",
                                                                "resize-conv-head"))  # fmt: skip
    assert count(paper, nn.ConvTranspose2d) == 5 and count(full, nn.ConvTranspose2d) == 0
    assert count(head, nn.ConvTranspose2d) == 4 and count(head, nn.Upsample) == 1
    x = torch.rand(1, 3, 64, 64)
    assert full(x).shape == head(x).shape == (1, 3, 64, 64)
    with pytest.raises(ConfigError, match="upsample resize-conv is for U-Nets"):
        ModelConfig(generator="resnet_6blocks", upsample="resize-conv")


# --- every option trains, is recorded and resumes exactly ------------------------------

OPTIONS = {
    "augment": {"train": {"augment": "translation,cutout,color"}},
    "r1": {"train": {"r1_gamma": 1.0, "r1_every": 2}},
    "fm": {
        "model": {"d_scales": 2, "discriminator": "patch_34"},
        "train": {"feature_matching": 10.0},
    },
    "resize": {"model": {"upsample": "resize-conv"}},
    "recon": {"train": {"reconstruction": "l2", "reconstruction_scale": 2}},
    "l1_only": {"train": {"lambda_gan": 0.0}},
    "aligned": {
        "train": {
            "reconstruction": "aligned",
            "align_shift": 2,
            "align_tiles": 2,
            "align_guide": "output",
        }
    },
}


def _after_one_step(cfg: RunConfig) -> dict[str, torch.Tensor]:
    """G's and D's weights after one training step from the same seed on the same batch."""
    from pix2pix.training.trainer import Trainer

    torch.manual_seed(0)
    trainer = Trainer(cfg.replace(model={"in_channels": 3, "out_channels": 3}),
                             torch.device("cpu"))  # fmt: skip
    batch = torch.Generator().manual_seed(1)
    a, b = (torch.rand(2, 3, 32, 32, generator=batch) * 2 - 1 for _ in "ab")
    torch.manual_seed(2)  # the same dropout masks
    trainer.step(a, b)
    nets = {"g": trainer.g, "d": trainer.method.d}
    return {f"{n}.{k}": v for n, net in nets.items() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("name", OPTIONS)
def test_option_resumes_exactly(name: str, aligned_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(aligned_data, **OPTIONS[name]).replace(train={"epochs": 1, "decay_epochs": 1})
    # the option changes the step (an option wired to nothing would resume exactly too):
    # against the same config without it (a train option keeps its model settings)
    option = OPTIONS[name]
    kept = {"model": option.get("model", {})} if "train" in option else {}
    base = tiny_config(aligned_data, **kept).replace(train={"epochs": 1, "decay_epochs": 1})
    assert base != cfg
    mine, theirs = _after_one_step(cfg), _after_one_step(base)
    assert mine.keys() != theirs.keys() or any(
        mine[k].shape != theirs[k].shape or not torch.equal(mine[k], theirs[k]) for k in mine
    )
    fit(cfg, tmp_path / "whole")
    fit(cfg.replace(train={"max_steps": 3}), tmp_path / "split")
    fit(cfg, tmp_path / "split", resume=True)
    assert_same_weights(tmp_path / "whole" / "latest", tmp_path / "split" / "latest")
    saved, _ = read_meta(tmp_path / "whole" / "latest")
    for section, values in OPTIONS[name].items():
        assert all(getattr(getattr(saved, section), k) == v for k, v in values.items())
    log = read_log(tmp_path / "whole" / "log.jsonl")
    if name == "r1":  # lazy: on D steps 0, 2, ...
        assert ["r1" in r for r in log[:4]] == [True, False, True, False]
    if name == "l1_only":
        assert all("loss_d" not in r for r in log)


def test_l1_only_leaves_d_as_initialised(aligned_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(aligned_data, train={"lambda_gan": 0.0, "max_steps": 3})
    fit(cfg, tmp_path / "a")
    fit(cfg.replace(train={"max_steps": 1}), tmp_path / "b")
    da, db = (load_file(tmp_path / r / "latest" / "discriminator.safetensors") for r in "ab")
    assert all(torch.equal(da[k], db[k]) for k in da)
    with pytest.raises(ConfigError, match="both 0"):
        TrainConfig(lambda_gan=0.0, lambda_l1=0.0)


@pytest.mark.parametrize("flag", ["--feature-matching", "--r1-gamma"])
def test_d_only_options_with_l1_only_are_a_one_line_error(
    flag: str, aligned_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # with --lambda-gan 0 D never trains: feature matching and R1 would be ignored
    code, _, err = run_cli(capsys, "train", "--data", aligned_data, "--out", tmp_path / "r",
                           "--generator", "unet_32", "--ngf", "4", "--ndf", "4",
                           "--load-size", "32", "--crop-size", "32", "--max-steps", "1",
                           "--no-progress", "--no-report", "--lambda-gan", "0", flag,
                           "10")  # fmt: skip
    assert code == 2 and f"{flag} 10.0 does nothing with --lambda-gan 0" in error_line(err)
    assert not (tmp_path / "r").exists()
    TrainConfig(lambda_gan=0.5, **{flag[2:].replace("-", "_"): 10.0})  # with D: fine


# --- recipe --------------------------------------------------------------------------


def test_recipe_flag_is_recorded_in_the_run(
    aligned_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "train", "--data", aligned_data, "--out", tmp_path / "r",
                           "--generator", "unet_32", "--ngf", "4", "--ndf", "4",
                           "--load-size", "32", "--crop-size", "32", "--max-steps", "1",
                           "--precision", "fp32", "--recipe", "improved", "--ema-decay",
                           "0.5", "--no-progress", "--no-report")  # fmt: skip
    assert code == 0, err
    saved, _ = read_meta(tmp_path / "r" / "latest")
    assert saved.train.recipe == "improved" and saved.train.ema_decay == 0.5
    assert saved.train.augment == RECIPES["improved"]["train"].get("augment", "")


def test_fit_trains_the_recipe_it_records(
    aligned_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # from Python, no CLI: RunConfig(train=TrainConfig(recipe="improved"))
    fit(tiny_config(aligned_data, train={"recipe": "improved", "max_steps": 1}), tmp_path / "lib")
    lib, _ = read_meta(tmp_path / "lib" / "latest")
    assert lib.train.recipe == "improved" and lib.model.upsample == "resize-conv"
    assert (tmp_path / "lib" / "latest" / EMA_FILE).is_file()  # it trained with the EMA
    g = Pix2Pix.load(tmp_path / "lib", "cpu", precision="fp32", compile="off").generator
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    # the command line with the same settings records the same run
    code, _, err = run_cli(capsys, "train", "--data", aligned_data, "--out", tmp_path / "cli",
                           "--generator", "unet_32", "--ngf", "8", "--ndf", "8", "--load-size",
                           "36", "--crop-size", "32", "--epochs", "2", "--decay-epochs", "2",
                           "--batch-size", "2", "--max-steps", "1", "--precision", "fp32",
                           "--recipe", "improved", "--no-progress", "--no-report")  # fmt: skip
    assert code == 0, err
    assert read_meta(tmp_path / "cli" / "latest")[0].differences(lib) == []


def test_init_from_with_a_recipe_records_what_it_trains(
    aligned_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    common = ["--data", aligned_data, "--load-size", "36", "--crop-size", "32", "--precision",
              "fp32", "--no-progress", "--no-report", "--max-steps", "1"]  # fmt: skip
    tiny = ["--generator", "unet_32", "--ngf", "4", "--ndf", "4"]
    for name, recipe in (("paper", "paper"), ("improved", "improved")):
        code, _, err = run_cli(capsys, "train", "--out", tmp_path / name, *tiny, *common,
                               "--recipe", recipe)  # fmt: skip
        assert code == 0, err
    # a transposed-conv U-Net fine-tuned with --recipe improved keeps its architecture:
    # the run trains (and records) the paper recipe with EMA and DiffAugment
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "a", "--init-from",
                           tmp_path / "paper", "--recipe", "improved", *common)  # fmt: skip
    assert code == 0, err
    tuned, _ = read_meta(tmp_path / "a" / "latest")
    assert tuned.model == read_meta(tmp_path / "paper" / "latest")[0].model
    assert tuned.model.upsample == "transpose" and tuned.train.recipe == "paper"
    assert tuned.train.ema_decay == 0.999 and tuned.train.augment == "translation,cutout,color"
    assert "--upsample transpose turns off part of --recipe improved" in caplog.text
    # from a run of the recipe's own architecture, the recipe holds
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "b", "--init-from",
                           tmp_path / "improved", "--recipe", "improved", *common)  # fmt: skip
    assert code == 0, err
    assert read_meta(tmp_path / "b" / "latest")[0].train.recipe == "improved"


def test_train_help_says_what_each_recipe_sets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "train", "--help")
    epilog = out[out.index("recipes (--recipe NAME") :]
    assert code == 0 and "paper     the paper's recipe" in epilog
    for section in RECIPES["improved"].values():
        for name, value in section.items():
            flag = "--" + name.replace("_", "-")
            assert (flag if value is True else f"{flag} {value}") in epilog
