"""`translate --backend onnxruntime`: the generator run by ONNX Runtime on the CPU.

`OrtGenerator` stands in for the generator at inference, like `AotGenerator`: for each
input shape and mode it exports the generator to ONNX (float32, weights as initialisers),
optionally quantises it (`int8`: dynamic quantisation of the convolutions' weights, with
activations quantised per call), keeps the file in the compile cache folder
(`pix2pix.translate.aotcache`: the same keys, durability and size cap as the compiled
packages, so `pix2pix cache list|clear` covers both) and runs it in an
`onnxruntime.InferenceSession`. The export takes seconds (8 s for unet_256 on a 2-core
CPU); it is paid once per model, input size, mode and machine.

Paper mode: the file takes its dropout noise as inputs, drawn before each call from the
global generator exactly as eager `nn.Dropout` draws it (`aot.draw_masks`), and its batch
norms normalise with the batch's statistics; so `--seed S` gives eager's picture up to
float rounding (1e-6), and leaves the generator where eager leaves it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from pix2pix.config import RunConfig
from pix2pix.errors import UserError, setting
from pix2pix.methods import method_of
from pix2pix.runtime import Speed
from pix2pix.translate import aotcache
from pix2pix.translate.aot import (
    AotGenerator,
    MaskSpec,
    _WithMasks,
    draw_masks,
    key_record,
    masked,
    weights_digest,
)

__all__ = ["QUANTIZE", "OrtGenerator", "cpu_runner", "require_onnxruntime"]
log = logging.getLogger("pix2pix.translate.aot")
QUANTIZE = ("off", "int8")
Session = Callable[[torch.Tensor, list[torch.Tensor]], torch.Tensor]


def cpu_runner(
    generator: nn.Module, config: RunConfig, speed: Speed, owned: bool = True
) -> Callable | None:
    """What runs a checkpoint's generator on the CPU instead of itself: an `OrtGenerator`
    (`--backend onnxruntime`), an `AotGenerator` (compiled packages), or None (eager or
    torch.compile). Both take the image alone: a generator with extra inputs (a code,
    labels) runs as it is, and is refused by the onnxruntime backend. A caller's module
    (not `owned`: its weights may change after the file is written) always runs itself."""
    extras = method_of(config).extra_inputs(config)
    if speed.backend == "onnxruntime" and extras:
        names = ", ".join(s.name for s in extras)
        raise UserError(
            f"{setting('--backend')} onnxruntime runs generators of the image alone; this "
            f"one also takes {names}: use {setting('--backend')} torch"
        )
    if not owned:
        if speed.backend == "onnxruntime":
            log.warning("backend onnxruntime runs models from Pix2Pix.load; this module is "
                        "the caller's (its weights may change): running it in torch")  # fmt: skip
        return None
    net = dataclasses.asdict(config.model)
    if speed.backend == "onnxruntime":
        return OrtGenerator(generator, net, quantize=speed.quantize)
    if speed.aot != "off" and not extras:
        return AotGenerator(generator, net, build=speed.aot == "build")
    return None


def require_onnxruntime(exporting: bool = False) -> None:
    """The backend runs files with onnxruntime; writing one also needs onnx and onnxscript
    (imported only then: a warm start loads onnxruntime alone)."""
    from pix2pix.export.runtimes import require_onnx

    try:
        if exporting:
            require_onnx()
        else:
            import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError(
            f"{setting('--backend')} onnxruntime needs onnxruntime; install it with "
            "pip install 'pix2pix[export]'"
        ) from None
    except UserError as e:
        raise UserError(f"{setting('--backend')} onnxruntime: {e}") from None


def export_onnx(generator: nn.Module, x: torch.Tensor, path: Path, quantize: str) -> list[MaskSpec]:
    """Write `generator` (in its current mode) for inputs like `x` to `path`; returns the
    dropout inputs the file takes after the image (paper mode; none in eval mode)."""
    from pix2pix.export import exportable_generator
    from pix2pix.export.runtimes import quiet_onnx_exporter

    require_onnxruntime(exporting=True)
    specs: list[MaskSpec] = []
    if generator.training:
        with masked(generator, None) as specs, torch.no_grad():
            generator(x)  # one eager pass records the shapes of the dropout noise
    # eval mode throughout, paper mode's batch norms on the batch's statistics
    net = _WithMasks(exportable_generator(generator, eval_mode=not generator.training)).eval()
    example = (x.float().contiguous(), *(m.contiguous() for m in draw_masks(specs, draw=False)))
    names = ["input", *(f"dropout_{i}" for i in range(len(specs)))]
    with quiet_onnx_exporter():
        program = torch.onnx.export(
            net, example, dynamo=True, verbose=False, input_names=names, output_names=["output"]
        )
    if quantize == "off":
        program.save(str(path))
        return specs
    from onnxruntime.quantization import QuantType, quantize_dynamic

    plain = path.with_name(path.name + ".fp32.onnx")
    try:
        program.save(str(plain))
        logging.getLogger().disabled, was = True, logging.getLogger().disabled  # its advice
        try:
            quantize_dynamic(
                plain, path, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"]
            )
        finally:
            logging.getLogger().disabled = was
    finally:
        plain.unlink(missing_ok=True)
    return specs


def open_session(path: Path) -> Session:
    """`path` in an onnxruntime session on the CPU with torch's thread count."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
        feeds = {n: t.float().contiguous().numpy() for n, t in zip(names, [x, *masks])}
        (y,) = session.run(["output"], feeds)
        return torch.from_numpy(y)

    return run


class OrtGenerator:
    """Callable like `generator` for inference, in ONNX Runtime (see the module doc)."""

    def __init__(self, generator: nn.Module, description: dict, *, quantize: str = "off") -> None:
        if quantize not in QUANTIZE:
            raise UserError(f"{setting('--quantize')} {quantize!r}: choose off or int8")
        require_onnxruntime()
        self.generator = generator
        self.description = description
        self.quantize = quantize
        self._runners: dict[tuple, Callable[[torch.Tensor], torch.Tensor]] = {}
        self._digest: str | None = None
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mode = "paper" if self.generator.training else "eval"
        key = (tuple(x.shape), "torch.float32", "nchw", mode)
        with self._lock:
            runner = self._runners.get(key)
            if runner is None:
                runner = self._runners[key] = self._runner(x, key)
        return runner(x).to(x.dtype)

    def what(self, key: tuple) -> dict:
        """Everything a file for `key` depends on."""
        if self._digest is None:
            self._digest = weights_digest(self.generator)
        import onnxruntime

        backend = {"backend": f"onnxruntime {onnxruntime.__version__}", "quantize": self.quantize}
        return {**key_record(self._digest, self.description, key), **backend}

    def file_path(self, key: tuple) -> Path:
        name = hashlib.blake2b(json.dumps(self.what(key), sort_keys=True).encode(), digest_size=16)
        return aotcache.cache_dir() / f"{name.hexdigest()}.onnx"

    def _runner(self, x: torch.Tensor, key: tuple) -> Callable[[torch.Tensor], torch.Tensor]:
        path = self.file_path(key)
        record = aotcache.verified(path)
        if record is None and path.exists():
            log.warning("%s is damaged (its size or digest is not the one recorded): rebuilt", path)
            aotcache.remove(path)
        if record is None:
            shape = "x".join(map(str, key[0]))
            log.info("exporting the generator for %s (%s mode) to %s", shape, key[3], path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = aotcache.temporary(path, ".onnx")
            try:
                specs = export_onnx(self.generator, x, tmp, self.quantize)
                aotcache.publish(tmp, path, {"what": self.what(key), "masks": specs})
            finally:
                tmp.unlink(missing_ok=True)
            aotcache.tidy(keep=path)
        else:
            specs = [tuple(s) for s in record.get("masks", [])]
        session = open_session(path)
        return lambda x: session(x, draw_masks(specs))
