"""The method layer: a method added by its own module and one table entry trains, resumes
exactly, checkpoints, translates and exports without a change to the loop.

`L1Only` exists only here: a generator trained with L1 alone (no discriminator), logging
a loss name of its own, so that nothing pix2pix-specific can hide in the shared code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import error_line, run_cli, tiny_config, write_aligned
from pix2pix import fit
from pix2pix.config import RunConfig
from pix2pix.errors import ConfigError
from pix2pix.methods import METHODS, ExtraInput, Method, method_class
from pix2pix.nets import build_generator
from pix2pix.nets.inference import run_any_size
from pix2pix.translate import Pix2Pix


class L1Only(Method):
    """G alone, one Adam, |G(a) - b|: the smallest method there is."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self.modules = {"generator": self.inference_module(config)}
        self.param_groups = {"g": ("generator", config.train.lr)}

    @classmethod
    def inference_module(cls, config: RunConfig, init: bool = True) -> torch.nn.Module:
        return build_generator(config.model, init=init)

    def step(self, real_a: torch.Tensor, real_b: torch.Tensor):
        opt, _ = self.optimizers["g"]
        opt.zero_grad(set_to_none=True)
        g = self.modules["generator"]
        with self.kit.autocast():
            fake = run_any_size(self.run["generator"], real_a, g.stride)
        loss = (fake.float() - real_b).abs().mean()
        self.kit.scaler.scale(loss).backward()
        self.kit.scaler.step(opt)
        return {"loss_abs": loss.detach()}, fake.detach()


@pytest.fixture
def l1_only(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(METHODS, "l1_only", L1Only)
    return "l1_only"


def _config(data: Path, **train: object) -> RunConfig:
    return tiny_config(data, model={"method": "l1_only"}, train={"max_steps": 5, **train})


def test_a_new_method_trains_resumes_and_checkpoints_through_the_shared_loop(
    l1_only: str, tmp_path: Path
) -> None:
    data = write_aligned(tmp_path / "data")
    cfg = _config(data, ema_decay=0.9, lr=2e-3)
    whole = fit(cfg, tmp_path / "whole")
    # its modules by name, the average of its inference module, no discriminator
    files = sorted(p.name for p in whole.iterdir())
    assert files == sorted(["config.json", "README.md", "training_state.pt",
                            "generator.safetensors", "generator_ema.safetensors"])  # fmt: skip
    meta = json.loads((whole / "config.json").read_text())
    assert meta["config"]["model"]["method"] == "l1_only"
    assert "l1_only" in (whole / "README.md").read_text()  # the model card names it
    log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss_abs" in r] == [1, 2, 3, 4, 5]
    assert log[-1]["loss_abs"] < log[0]["loss_abs"]  # it learns
    # stopped after 2 steps and resumed: the same weights as the uninterrupted run
    fit(cfg.replace(train={"max_steps": 2}), tmp_path / "split")
    split = fit(cfg, tmp_path / "split", resume=True)
    for name in ("generator", "generator_ema"):
        a, b = load_file(whole / f"{name}.safetensors"), load_file(split / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_a_new_method_translates_and_exports_without_a_method_flag(
    l1_only: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_aligned(tmp_path / "data")
    ckpt = fit(_config(data), tmp_path / "run")
    model = Pix2Pix.load(ckpt, "cpu", precision="fp32", compile="off")
    x = torch.rand(1, 3, 40, 36) * 2 - 1
    y = model.translate_tensor(x, eval_mode=True)
    g = L1Only.inference_module(model.config)
    g.load_state_dict(load_file(ckpt / "generator.safetensors"))
    with torch.no_grad():
        assert torch.allclose(y, run_any_size(g.eval(), x, g.stride), atol=1e-6)
    tiled = model.translate_tensor(x, eval_mode=True, tile=32, overlap=8)
    assert tiled.shape == y.shape
    pytest.importorskip("onnx")
    code, _, err = run_cli(capsys, "export", "--checkpoint", ckpt, "--format", "onnx", "--out",
                             tmp_path / "g.onnx", "--eval")  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "g.onnx").is_file()


def test_an_unknown_method_is_one_line_naming_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="method 'nope' is not valid; choose one of: pix2pix"):
        method_class("nope")
    data = write_aligned(tmp_path / "data")
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", tmp_path / "run",
                           "--method", "nope", "--max-steps", "1")  # fmt: skip
    assert code == 2
    assert "--method 'nope' is not valid" in error_line(err)
    assert not (tmp_path / "run").exists()


def test_extra_inputs_are_filled_named_and_refused_when_unknown() -> None:
    class Coded(L1Only):
        @classmethod
        def extra_inputs(cls, config: RunConfig) -> tuple[ExtraInput, ...]:
            return (ExtraInput("z", 8), ExtraInput("labels", 5, "spatial"))

    cfg = RunConfig()
    x = torch.zeros(2, 3, 16, 12)
    z, labels = Coded.default_extras(cfg, x, None)
    assert z.shape == (2, 8) and labels.shape == (2, 5, 16, 12)
    given = torch.ones(2, 8)
    assert Coded.default_extras(cfg, x, {"z": given})[0] is given
    with pytest.raises(ValueError, match="style are not taken by this model; it takes: z, labels"):
        Coded.default_extras(cfg, x, {"style": given})
    with pytest.raises(ValueError, match="it takes: none"):
        L1Only.default_extras(cfg, x, {"z": given})


class PointwiseCoded(torch.nn.Module):
    """out = tanh(conv1x1([x, labels]) + mean(z)): every pixel on its own, so tiles give
    exactly the whole image's answer."""

    stride = 1

    def __init__(self, c_in: int, c_out: int, labels: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(c_in + labels, c_out, 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(torch.cat([x, labels], 1)) + z.mean(1).view(-1, 1, 1, 1))


class CodedMethod(L1Only):
    """The L1 method on a generator that takes a code z (8) and a label map (5 classes)."""

    @classmethod
    def inference_module(cls, config: RunConfig, init: bool = True) -> torch.nn.Module:
        m = config.model
        return PointwiseCoded(int(m.in_channels or 3), int(m.out_channels or 3), 5)

    @classmethod
    def extra_inputs(cls, config: RunConfig) -> tuple[ExtraInput, ...]:
        return (ExtraInput("z", 8), ExtraInput("labels", 5, "spatial"))

    def step(self, real_a: torch.Tensor, real_b: torch.Tensor):
        opt, _ = self.optimizers["g"]
        opt.zero_grad(set_to_none=True)
        z, labels = self.default_extras(self.config, real_a, None)
        fake = self.run["generator"](real_a, z, labels)
        loss = (fake - real_b).abs().mean()
        loss.backward()
        opt.step()
        return {"loss_abs": loss.detach()}, fake.detach()


def test_extra_inputs_reach_the_generator_whole_tiled_and_exported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(METHODS, "coded", CodedMethod)
    data = write_aligned(tmp_path / "data")
    ckpt = fit(tiny_config(data, model={"method": "coded"}, train={"max_steps": 2}),
               tmp_path / "run")  # fmt: skip
    model = Pix2Pix.load(ckpt, "cpu", precision="fp32", compile="off")
    g = model.generator
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 20, generator=gen) * 2 - 1
    z = torch.randn(2, 8, generator=gen)
    labels = torch.rand(2, 5, 24, 20, generator=gen)
    with torch.no_grad():
        want = g(x, z, labels)
        default = g(x, torch.zeros(2, 8), torch.zeros(2, 5, 24, 20))
    extra = {"z": z, "labels": labels}
    whole = model.translate_tensor(x, eval_mode=True, extra=extra)
    assert torch.allclose(whole, want, atol=1e-6)
    assert torch.allclose(model.translate_tensor(x, eval_mode=True), default, atol=1e-6)
    # tiles (several per pass in eval mode) take their window of the label map, and z
    tiled = model.translate_tensor(x, eval_mode=True, extra=extra, tile=8, overlap=2)
    assert torch.allclose(tiled, want, atol=1e-5)
    # ONNX and TorchScript files take z and the label map after the image
    from pix2pix.export import export_checkpoint

    formats = ["torchscript"]
    try:
        import onnx  # noqa: F401
        import onnxruntime

        formats.append("onnx")
    except ImportError:
        pass
    for fmt in formats:
        result = export_checkpoint(ckpt, fmt, tmp_path / f"g.{fmt}", eval_mode=True)
        assert result.checks and max(c.max_abs_diff for c in result.checks) < 1e-4
    if "onnx" in formats:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"))
        assert [i.name for i in session.get_inputs()] == ["input", "z", "labels"]
        (y,) = session.run(None, {"input": x.numpy(), "z": z.numpy(), "labels": labels.numpy()})
        assert torch.allclose(torch.from_numpy(y), want, atol=1e-4)
