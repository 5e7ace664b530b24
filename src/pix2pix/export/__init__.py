"""Export a trained generator to ONNX or TorchScript, verified against PyTorch.

The exported graph is the bare generator: (B, C_in, H, W) float32 in [-1, 1] ->
(B, C_out, H, W) in [-1, 1], with H and W multiples of the generator's stride (256 for
`unet_256`, 4 for the ResNets); any-size padding stays the caller's job (see
`pix2pix.nets.inference`). Batch, height and width are dynamic.

Batch norm is exported the way the model is used (see `pix2pix.translate`):

- paper mode (default): normalised with the statistics of the batch being translated,
  as in training. Every `BatchNorm2d` is replaced by `BatchStatsNorm2d`, which computes
  the batch mean and variance explicitly in the graph and never touches the running
  averages, so the exported graph is a plain inference graph.
- eval mode (`eval_mode=True`): the running averages from training.

Dropout is off in both: an exported model is deterministic. (PyTorch's paper-mode
translation keeps dropout on; the export matches it with dropout switched off.)

Export is verified: the written file is loaded back (onnxruntime for ONNX, torch.jit.load
for TorchScript) and run on random inputs of two sizes and batch sizes; the largest
absolute difference from the PyTorch generator in the same mode must stay within
`tolerance`, or the file is removed and `VerificationError` says by how much it missed.

ONNX uses PyTorch's torch.export-based exporter (`dynamo=True`, the default since
PyTorch 2.9; needs `onnx` and `onnxscript`), with height and width declared as
`stride * h` and `stride * w` so the graph's input shape states the constraint. The
legacy TorchScript-based ONNX exporter is deprecated and not used.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import nn

from pix2pix.checkpoint import find_checkpoint, generator_file, load_weights, read_meta
from pix2pix.config import RunConfig
from pix2pix.errors import UserError, setting
from pix2pix.export.runtimes import (
    onnx_runner,
    require_onnx,
    torchscript_runner,
    write_onnx,
    write_torchscript,
)
from pix2pix.fileio import staged_file
from pix2pix.methods import ExtraInput, method_of
from pix2pix.nets.inference import inference_mode

Format = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = get_args(Format)

# Float32 outputs in [-1, 1]: runtimes that sum in a different order differ by ~1e-6.
DEFAULT_TOLERANCE = 1e-4


class VerificationError(UserError):
    """The exported file does not reproduce the PyTorch generator within the tolerance."""


class BatchStatsNorm2d(nn.Module):
    """Batch norm with the current batch's statistics, as an explicit graph; no buffers.

    (B, C, H, W) -> (B, C, H, W): what `nn.BatchNorm2d` computes in training mode (biased
    variance over batch, height and width), without updating running averages, so it
    exports as plain reductions instead of a training-mode BatchNormalization.
    """

    def __init__(self, norm: nn.BatchNorm2d) -> None:
        super().__init__()
        self.eps = float(norm.eps)
        self.weight = None if norm.weight is None else nn.Parameter(norm.weight.detach().clone())
        self.bias = None if norm.bias is None else nn.Parameter(norm.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1)
        centred = x - mean
        var = centred.pow(2).mean(dim=(0, 2, 3), keepdim=True)
        y = centred * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(1, -1, 1, 1)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y


def _replace_batch_norms(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, BatchStatsNorm2d(child))
        else:
            _replace_batch_norms(child)


def exportable_generator(generator: nn.Module, eval_mode: bool) -> nn.Module:
    """A copy of `generator` ready to trace: eval mode (dropout off), float32 on the CPU;
    in paper mode with every batch norm replaced by `BatchStatsNorm2d`."""
    net = _copy(generator)
    if not eval_mode:
        _replace_batch_norms(net)
    net.eval().requires_grad_(False)
    return net


def _copy(generator: nn.Module) -> nn.Module:
    return copy.deepcopy(generator).to("cpu", torch.float32)


@contextlib.contextmanager
def reference_mode(generator: nn.Module, eval_mode: bool) -> Iterator[None]:
    """The PyTorch reference an export is compared with: `translate`'s inference mode
    (batch statistics or running averages) with dropout switched off."""
    with inference_mode(generator, eval_mode):
        for m in generator.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        yield


def verification_shapes(stride: int, channels: int) -> list[tuple[int, int, int, int]]:
    """Two (B, C, H, W) inputs that differ in batch, height and width (multiples of stride).

    The side is at least 64 px: a ResNet's stride is 4, but its reflection pads need a
    few pixels left after downsampling.
    """
    side = stride * max(1, -(-64 // stride))
    return [(1, channels, side, 2 * side), (2, channels, 2 * side, side)]


@dataclass(frozen=True)
class Check:
    """One verification input and the largest |exported - PyTorch| on its output."""

    shape: tuple[int, int, int, int]
    max_abs_diff: float


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    eval_mode: bool
    stride: int
    tolerance: float
    checks: list[Check]


def load_generator(checkpoint: str | Path, weights: str = "auto") -> tuple[nn.Module, RunConfig]:
    """The generator (float32, CPU, eval) and config of a run or checkpoint folder
    (`weights`: auto takes the EMA average when there is one; ema; raw)."""
    ckpt = find_checkpoint(Path(checkpoint))
    config, _ = read_meta(ckpt)
    method = method_of(config)
    generator = method.inference_module(config, init=False)
    load_weights(generator, generator_file(ckpt, weights, method.inference))
    return generator.eval(), config


def export_checkpoint(
    checkpoint: str | Path,
    fmt: str,
    out: str | Path,
    *,
    eval_mode: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    overwrite: bool = False,
    weights: str = "auto",
) -> ExportResult:
    """Export the generator of `checkpoint` to `out` and verify it (see the module doc)."""
    _check_out(Path(out), overwrite)  # before the (slow) load
    generator, config = load_generator(checkpoint, weights)
    return export_generator(
        generator, config, fmt, out, eval_mode=eval_mode, tolerance=tolerance, overwrite=overwrite
    )


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_dir():
        raise UserError(
            f"{setting('--out')} {out} is a folder; give a file name such as {out / 'model'}"
        )
    if out.exists() and not overwrite:
        raise UserError(
            f"{out}: already exists; pass {setting('--overwrite')} to replace it, or choose "
            f"another {setting('--out')}"
        )


def export_generator(
    generator: nn.Module,
    config: RunConfig,
    fmt: str,
    out: str | Path,
    *,
    eval_mode: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    overwrite: bool = False,
) -> ExportResult:
    """Write `generator` as `fmt` to `out`, run the file, compare it with PyTorch.

    The file appears at `out` only after verification passed; on any failure nothing is
    left behind (an existing `out` stays as it was). An existing `out` is replaced only
    with `overwrite`.
    """
    if fmt not in FORMATS:
        raise UserError(
            f"{setting('--format')} {fmt!r} is not valid; choose one of: {', '.join(FORMATS)}"
        )
    if not tolerance >= 0:
        raise UserError(f"{setting('--tolerance')} {tolerance} is out of range; use a value >= 0")
    if fmt == "onnx":
        require_onnx()
    out = Path(out)
    _check_out(out, overwrite)
    stride = int(generator.stride)
    c_in = int(config.model.in_channels or 0)
    net = exportable_generator(generator, eval_mode)
    reference = _copy(generator)
    metadata = {
        "pix2pix_config": config.to_json(),
        "batch_norm": "running_statistics" if eval_mode else "batch_statistics",
        "dropout": "off",
        "stride": str(stride),
        "value_range": "[-1, 1]",
        "layout": "NCHW",
    }
    specs = method_of(config).extra_inputs(config)  # inputs after the image, by name
    if specs:
        metadata["extra_inputs"] = ", ".join(f"{s.name} ({s.kind}, {s.channels})" for s in specs)
    rng = torch.Generator().manual_seed(0)
    example = _inputs((2, c_in, 2 * stride, 3 * stride), specs, rng)  # see write_onnx
    with staged_file(out) as tmp:
        if fmt == "onnx":
            write_onnx(net, example, tmp, stride, metadata, [s.name for s in specs])
            run = onnx_runner(tmp)
        else:
            write_torchscript(net, example, tmp, metadata)
            run = torchscript_runner(tmp)
        checks = []
        for shape in verification_shapes(stride, c_in):
            inputs = _inputs(shape, specs, rng)
            with torch.no_grad(), reference_mode(reference, eval_mode):
                expected = reference(*inputs)
            got = run(*inputs)
            if got.shape != expected.shape:
                raise VerificationError(
                    f"{out}: the exported model gave shape {tuple(got.shape)} for input "
                    f"{shape}, PyTorch {tuple(expected.shape)}; the file was not written"
                )
            checks.append(Check(shape, float((got - expected).abs().max())))
        worst = max(checks, key=lambda c: c.max_abs_diff)
        if not worst.max_abs_diff <= tolerance:
            raise VerificationError(
                f"{out}: the exported model differs from PyTorch by {worst.max_abs_diff:.3g} "
                f"(input {worst.shape}), more than {setting('--tolerance')} {tolerance:g}; "
                "the file was not written"
            )
    return ExportResult(out, fmt, eval_mode, stride, tolerance, checks)


def _inputs(
    shape: tuple[int, ...], specs: tuple[ExtraInput, ...], rng: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """Random inputs in [-1, 1]: the image of `shape`, then each extra input."""
    b, _, h, w = shape
    extra = [(b, s.channels, h, w) if s.kind == "spatial" else (b, s.channels) for s in specs]
    return tuple(torch.rand(sh, generator=rng) * 2 - 1 for sh in [shape, *extra])
