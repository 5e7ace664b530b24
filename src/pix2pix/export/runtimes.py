"""The files `pix2pix export` writes, and the runtimes that run them back: ONNX (run
with onnxruntime) and TorchScript (torch.jit)."""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from pix2pix.errors import UserError

# ---------------------------------------------------------------- ONNX


def require_onnx() -> None:
    missing = []
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UserError(
            f"ONNX export needs {', '.join(missing)}; install them with "
            "pip install 'pix2pix[export]'"
        )


@contextlib.contextmanager
def quiet_onnx_exporter() -> Iterator[None]:
    """Hide the exporter's progress lines, its notes about torchvision ops we lack and the
    optimizer's per-pass messages (all logged at INFO/WARNING by torch and onnxscript)."""
    names = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            # inputs sharing the batch dimension (the image and a code) name it once
            warnings.filterwarnings("ignore", message="# The axis name")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def write_onnx(
    net: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    stride: int,
    metadata: dict[str, str],
    extra_names: list[str],
) -> None:
    import onnx
    from torch.export import Dim

    # Derived dims: the file's input shape reads (batch, C, stride*h, stride*w), stating
    # the constraint. An example with no dimension of size 1 keeps all three dynamic.
    h, w, batch = Dim("h", min=1), Dim("w", min=1), Dim("batch", min=1)
    image = {0: batch, 2: stride * h, 3: stride * w}
    dynamic = tuple(image if t.ndim == 4 else {0: batch} for t in example)
    with quiet_onnx_exporter():
        program = torch.onnx.export(
            net,
            example,
            dynamo=True,
            verbose=False,
            dynamic_shapes=dynamic,
            input_names=["input", *extra_names],
            output_names=["output"],
        )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, metadata)
    onnx.save_model(proto, str(path))  # one file: 54M parameters are far below 2 GB


WEIGHT_FORMATS = ("fp32", "fp16", "int8")


def compress_weights(path: Path, fmt: str) -> None:
    """Store the convolutions' float32 weights in the ONNX file at `path` as fp16, or as
    int8 with a float32 scale per output slice (symmetric, the largest |w| maps to 127),
    each followed by the node that turns it back into float32 (Cast, DequantizeLinear).
    The file shrinks about 2x or 4x; the arithmetic stays float32 (ONNX Runtime folds
    those nodes into constants when it loads the file). Biases and norms stay float32."""
    if fmt == "fp32":
        return
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph, kept, restore = model.graph, [], []
    for init in graph.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype != np.float32 or w.ndim != 4:  # only the convolutions' kernels
            kept.append(init)
            continue
        if fmt == "fp16":
            kept.append(numpy_helper.from_array(w.astype(np.float16), f"{init.name}.fp16"))
            restore.append(
                helper.make_node("Cast", [f"{init.name}.fp16"], [init.name], to=TensorProto.FLOAT)
            )
            continue
        scale = np.abs(w).reshape(len(w), -1).max(axis=1) / 127
        scale[scale == 0] = 1
        q = np.clip(np.round(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
        names = [f"{init.name}.int8", f"{init.name}.scale", f"{init.name}.zero"]
        kept += [numpy_helper.from_array(a, n) for a, n in
                 zip((q, scale.astype(np.float32), np.zeros(len(w), np.int8)), names)]  # fmt: skip
        restore.append(helper.make_node("DequantizeLinear", names, [init.name], axis=0))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for i, node in enumerate(restore):
        graph.node.insert(i, node)
    onnx.save_model(model, str(path))


def onnx_runner(path: Path) -> Callable[..., torch.Tensor]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    names = [i.name for i in session.get_inputs()]

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        (y,) = session.run(["output"], {n: t.numpy() for n, t in zip(names, inputs)})
        return torch.from_numpy(y)

    return run


# ---------------------------------------------------------------- TorchScript


def write_torchscript(
    net: nn.Module, example: tuple[torch.Tensor, ...], path: Path, metadata: dict[str, str]
) -> None:
    # Tracing records the convolutions and the batch-statistics reductions, all of which
    # are shape-agnostic, so the traced module takes any batch and any H, W multiple of
    # the stride. (torch.jit is deprecated in PyTorch but still the format C++ loads.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(net, example, check_trace=False)
        extra = {"pix2pix.json": json.dumps(metadata, indent=2)}
        torch.jit.save(traced, str(path), _extra_files=extra)


def torchscript_runner(path: Path) -> Callable[..., torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu")

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(*inputs)

    return run
