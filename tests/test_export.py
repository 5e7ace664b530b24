"""`pix2pix export`: ONNX and TorchScript files that reproduce PyTorch, or nothing written."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from conftest import tiny_config
from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.cli import main
from pix2pix.errors import UserError
from pix2pix.export import (
    DEFAULT_TOLERANCE,
    VerificationError,
    export_checkpoint,
    load_generator,
    reference_mode,
)
from pix2pix.nets import build_generator
from pix2pix.translate import Pix2Pix


def make_checkpoint(path: Path, generator: str = "unet_32", c_in: int = 1, c_out: int = 3) -> Path:
    """A tiny generator whose batch-norm running statistics differ from any batch's."""
    cfg = tiny_config(
        "data", model={"generator": generator, "in_channels": c_in, "out_channels": c_out}
    )
    torch.manual_seed(0)
    g = build_generator(cfg.model).train()
    side = max(64, g.stride)
    with torch.no_grad():
        g(torch.randn(4, c_in, side, side) * 3 + 1)  # running stats far from N(0, 1)
    save_checkpoint(path, cfg, Progress(), {"generator": g})
    return path


def run_file(fmt: str, path: Path, x: torch.Tensor) -> torch.Tensor:
    """Run an exported file the way a user would, outside pix2pix."""
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
        return torch.jit.load(str(path))(x)


@pytest.mark.parametrize("eval_mode", [False, True], ids=["batch-stats", "eval"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_round_trip(tmp_path: Path, fmt: str, eval_mode: bool) -> None:
    ckpt = make_checkpoint(tmp_path / "ck")  # unet_32 (no dropout layers), 1 -> 3 channels
    out = tmp_path / "out" / f"g.{fmt}"
    result = export_checkpoint(ckpt, fmt, out, eval_mode=eval_mode)

    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp files left
    # verified on two inputs differing in batch, height and width, within the tolerance
    (b1, c1, h1, w1), (b2, c2, h2, w2) = (c.shape for c in result.checks)
    assert c1 == c2 == 1 and b1 != b2 and h1 != h2 and w1 != w2
    assert all(c.max_abs_diff <= DEFAULT_TOLERANCE for c in result.checks)

    # A third shape, checked here against the public translation API in the same mode:
    # for a model without dropout, paper-mode translation is exactly batch statistics.
    x = torch.rand(3, 1, 96, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    expected = Pix2Pix.load(ckpt, device="cpu", precision="fp32").translate_tensor(
        x, eval_mode=eval_mode
    )
    got = run_file(fmt, out, x)
    assert got.shape == (3, 3, 96, 32)
    assert (got - expected).abs().max() < DEFAULT_TOLERANCE
    # the two batch-norm modes really differ (the running statistics are not the batch's)
    other = Pix2Pix.load(ckpt, device="cpu", precision="fp32").translate_tensor(
        x, eval_mode=not eval_mode
    )
    assert (got - other).abs().max() > 1e-2
    if fmt == "onnx":  # the file states its dynamic dimensions and how it was exported
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        (inp,), (outp,) = session.get_inputs(), session.get_outputs()
        assert (inp.name, inp.shape) == ("input", ["batch", 1, "32*h", "32*w"])
        assert (outp.name, outp.shape[:2]) == ("output", ["batch", 3])
        meta = session.get_modelmeta().custom_metadata_map
        stats = "running_statistics" if eval_mode else "batch_statistics"
        assert meta["batch_norm"] == stats and meta["stride"] == "32"


def test_dropout_is_off_in_the_export(tmp_path: Path) -> None:
    ckpt = make_checkpoint(tmp_path / "ck", generator="unet_64", c_in=3, c_out=3)  # 1 dropout
    out = tmp_path / "g.pt"
    export_checkpoint(ckpt, "torchscript", out)
    generator, _ = load_generator(ckpt)
    assert any(isinstance(m, torch.nn.Dropout) for m in generator.modules())
    x = torch.rand(2, 3, 64, 128) * 2 - 1
    with torch.no_grad(), reference_mode(generator, eval_mode=False):
        without_dropout = generator(x)
    got = run_file("torchscript", out, x)
    assert torch.allclose(got, run_file("torchscript", out, x))  # deterministic
    assert (got - without_dropout).abs().max() < DEFAULT_TOLERANCE
    with_dropout = Pix2Pix.load(ckpt, device="cpu", precision="fp32").translate_tensor(x)
    assert (got - with_dropout).abs().max() > 1e-3


def test_failed_verification_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    import pix2pix.export as export

    ckpt = make_checkpoint(tmp_path / "ck")
    out = tmp_path / "g.pt"
    out.write_bytes(b"an earlier export")
    # a broken exporter: running statistics where the batch's statistics were asked for
    monkeypatch.setattr(export, "exportable_generator", lambda g, eval_mode: g.eval())
    with pytest.raises(UserError, match="already exists; pass overwrite"):
        export_checkpoint(ckpt, "torchscript", out)  # never replaced unless asked
    with pytest.raises(VerificationError, match=r"differs from PyTorch by .* not written"):
        export_checkpoint(ckpt, "torchscript", out, overwrite=True)
    assert out.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "g.pt"]


def test_export_command_prints_the_differences(tmp_path: Path, capsys) -> None:
    ckpt = make_checkpoint(tmp_path / "ck", generator="resnet_6blocks", c_in=3, c_out=1)
    out = tmp_path / "g.pt"
    main(["export", "--checkpoint", str(ckpt), "--format", "torchscript", "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    diffs = [float(line.rsplit("= ", 1)[1]) for line in lines if line.startswith("verified")]
    assert len(diffs) == 2 and max(diffs) <= DEFAULT_TOLERANCE
    assert "batch statistics; dropout off; H, W multiples of 4" in lines[-1]
    y = run_file("torchscript", out, torch.zeros(1, 3, 8, 12))
    assert y.shape == (1, 1, 8, 12) and np.isfinite(y.numpy()).all()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tolerance", "-1"], "--tolerance -1.0 is out of range"),
        (["--out", "."], "is a folder"),
    ],
)
def test_export_command_rejects_bad_values(tmp_path: Path, capsys, flags, message) -> None:
    ckpt = make_checkpoint(tmp_path / "ck")
    args = ["export", "--checkpoint", str(ckpt), "--format", "torchscript"]
    args += flags if "--out" in flags else [*flags, "--out", str(tmp_path / "g.pt")]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "g.pt").exists()


def test_missing_onnx_packages_are_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with pytest.raises(UserError, match=r"needs onnxscript; .*pix2pix\[export\]"):
        export_checkpoint(make_checkpoint(tmp_path / "ck"), "onnx", tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()
