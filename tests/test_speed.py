"""Fast paths give the answers of the plain fp32 eager path, within stated tolerances."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from pix2pix.checkpoint import GENERATOR_FILE, Progress, load_weights, save_checkpoint
from pix2pix.nets import build_generator
from pix2pix.runtime import Speed, compiled, default_speed, resolve_speed
from pix2pix.training.trainer import Trainer
from pix2pix.translate import Pix2Pix

CPU = torch.device("cpu")
# Output tolerances on the [-1, 1] scale: bf16 keeps 8 significant bits (~0.4% per value);
# layout changes and compilation only reorder float32 sums.
TOL = {"bf16": 3e-2, "fp32": 1e-4}


def config(**model):
    return tiny_config("data", model={"in_channels": 3, "out_channels": 3, "ngf": 8, **model})


def trained_generator(generator: str = "unet_32") -> torch.nn.Module:
    """A generator after a few training steps (so outputs and BN statistics are not trivial)."""
    cfg = config(generator=generator)
    torch.manual_seed(0)
    trainer = Trainer(cfg, CPU, Speed())
    a = torch.rand(4, 3, 32, 32) * 2 - 1
    for _ in range(5):
        trainer.step(a, -a)
    return trainer.g


@pytest.mark.parametrize(
    "speed",
    [Speed("bf16"), Speed("fp32", channels_last=True), Speed("bf16", channels_last=True)],
    ids=str,
)
@pytest.mark.parametrize("eval_mode", [True, False])
def test_eager_inference_fast_paths_match_fp32(speed: Speed, eval_mode: bool) -> None:
    g = trained_generator()
    plain = Pix2Pix(g, config(), CPU, Speed())
    fast = Pix2Pix(g, config(), CPU, speed)
    x = torch.rand(2, 3, 40, 56) * 2 - 1
    ref = plain.translate_tensor(x, eval_mode=eval_mode)
    out = fast.translate_tensor(x, eval_mode=eval_mode)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert (out - ref).abs().max() < TOL[speed.precision]
    assert next(g.parameters()).dtype == torch.float32  # the caller's module is untouched


def test_compiled_inference_matches_eager() -> None:
    # unet_64 has a dropout layer: in paper mode the compiled graph must draw eager's
    # noise for the same seed (issue 25 item 4: inductor drew its own, 0.4 off)
    cfg = config(generator="unet_64", ngf=4)
    torch.manual_seed(0)
    g = build_generator(cfg.model).eval()
    eager = Pix2Pix(g, cfg, CPU, Speed())
    fast = Pix2Pix(g, cfg, CPU, Speed(compile=True))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    for eval_mode in (True, False):
        ref = eager.translate_tensor(x, eval_mode=eval_mode, seed=3)
        out = fast.translate_tensor(x, eval_mode=eval_mode, seed=3)
        assert (out - ref).abs().max() < TOL["fp32"]


def test_bf16_training_tracks_fp32() -> None:
    cfg = config()
    torch.manual_seed(0)
    a = torch.rand(4, 3, 32, 32) * 2 - 1
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(1)
        trainer = Trainer(cfg, CPU, Speed(precision))
        losses[precision] = [trainer.step(a, -a)[0] for _ in range(6)]
    for fp32, bf16 in zip(losses["fp32"], losses["bf16"]):
        assert bf16["loss_g_l1"].item() == pytest.approx(fp32["loss_g_l1"].item(), rel=0.05)
        assert bf16["loss_d"].item() == pytest.approx(fp32["loss_d"].item(), abs=0.05)


def test_channels_last_compile_wrapped_checkpoint_loads_plainly(tmp_path: Path) -> None:
    cfg = config()
    torch.manual_seed(0)
    trainer = Trainer(cfg, CPU, Speed("fp32", channels_last=True))
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    trainer.step(trainer.to_device(a), trainer.to_device(-a))
    assert next(trainer.g.parameters()).is_contiguous(memory_format=torch.channels_last)
    # saved through the torch.compile wrapper the trainer would run with --compile on
    wrapped = torch.compile(trainer.g)
    save_checkpoint(
        tmp_path / "ck", cfg, Progress(), {"generator": wrapped, "discriminator": trainer.method.d}
    )
    plain = load_weights(build_generator(cfg.model, init=False), tmp_path / "ck" / GENERATOR_FILE)
    reference = copy.deepcopy(trainer.g).to(memory_format=torch.contiguous_format).eval()
    with torch.no_grad():
        assert torch.equal(plain.eval()(a), reference(a))


def test_auto_settings_per_device() -> None:
    cpu_train = default_speed(CPU, "train")
    assert not cpu_train.compile and not cpu_train.channels_last  # measured slower on CPU
    assert not default_speed(CPU, "infer").compile  # a one-off call: compiling is not repaid
    assert default_speed(CPU, "infer", images=10_000).aot == "build"  # compiled, cached
    assert resolve_speed(CPU, "train", "fp32", "on", "off") == Speed("fp32", True, False)
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        resolve_speed(CPU, "train", precision="fp16")


def test_compile_modes_turn_compile_on_and_reach_torch_compile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    speed = resolve_speed(CPU, "train", compile="reduce-overhead")
    assert speed.compile and speed.compile_mode == "reduce-overhead"
    assert resolve_speed(CPU, "train", compile="on").compile_mode is None
    seen = {}
    monkeypatch.setattr(torch, "compile", lambda module, mode=None: seen.setdefault("mode", mode))
    compiled(torch.nn.Identity(), speed, "train")
    assert seen["mode"] == "reduce-overhead"
