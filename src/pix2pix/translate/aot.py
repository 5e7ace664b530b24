"""Generators compiled ahead of time (AOTInductor), kept on disk per model and machine.

torch.compile pays its compilation (10-30 s on a 2-core CPU) in every process, so until
now only jobs of hundreds of images used it. An AOTInductor package is that compiled
generator (weights frozen into it, constant-folded and prepacked) as one file that loads
in a fraction of a second. `AotGenerator` stands in for the generator at inference: for
each input shape and inference mode it runs the package from the cache folder when one
is there, builds it first when allowed (`build`), and otherwise runs the generator as it
is. A package is keyed by everything it depends on (the weights' digest, the network's
config, the input's shape, dtype and layout, the mode, torch's version and the CPU), so a
fine-tuned model or another machine never picks up a stale one.

The cache folder: $PIX2PIX_CACHE/aot, else ~/.cache/pix2pix/aot. Packages are written
under a temporary name and renamed, so an interrupted build leaves nothing half-written;
deleting the folder is always safe (packages are rebuilt when needed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from pix2pix.runtime import cpu_model

log = logging.getLogger(__name__)
Runner = Callable[[torch.Tensor], torch.Tensor]


def cache_dir() -> Path:
    root = os.environ.get("PIX2PIX_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pix2pix") / "aot"


def weights_digest(module: nn.Module) -> str:
    """A digest of every parameter and buffer (names, dtypes, shapes and values)."""
    h = hashlib.blake2b(digest_size=20)
    for name, t in sorted(module.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        t = t.detach().cpu().contiguous().reshape(-1)  # 0-d tensors too
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def build_package(generator: nn.Module, x: torch.Tensor, path: Path) -> None:
    """Export `generator` (in its current mode) for inputs like `x` and compile it to
    `path`, weights frozen in."""
    from torch._inductor import aoti_compile_and_package, config  # here: ~1 s to import

    program = torch.export.export(generator, (x,))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.pt2", dir=path.parent)
    os.close(fd)
    try:
        with config.patch(freezing=True):
            aoti_compile_and_package(program, package_path=tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def package_loader() -> type | None:
    """torch's own AOTInductor package loader (a private class), if this torch has it."""
    return getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)


def load_package(path: Path) -> Runner:
    """The compiled generator in `path` as a function of one tensor.

    Through the package loader itself where torch has it: `aoti_load_package` would
    import inductor and dynamo (~1 s) and compile and run six probe programs to compare
    the CPU's vector ISA with the one the package was built for (~1 s more), work the
    cache key (which includes the ISA) has already done."""
    loader_class = package_loader()
    if loader_class is None:  # another torch: the public way
        from torch._inductor import aoti_load_package

        return aoti_load_package(str(path))
    loader = loader_class(str(path), "model", False, 1, -1)

    def run(x: torch.Tensor) -> torch.Tensor:
        (y,) = loader.boxed_run([x])
        return y

    return run


class AotGenerator:
    """Callable like `generator` for inference; runs a cached compiled package per input
    shape and mode (`build`: compile a missing one first, else run the generator)."""

    def __init__(self, generator: nn.Module, description: dict, *, build: bool) -> None:
        self.generator = generator
        self.description = description  # what besides the weights defines the network
        self.build = build
        self._runners: dict[tuple, Runner] = {}
        self._digest: str | None = None
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mode = "paper" if self.generator.training else "eval"
        layout = "nhwc" if x.is_contiguous(memory_format=torch.channels_last) else "nchw"
        key = (tuple(x.shape), str(x.dtype), layout, mode)
        with self._lock:
            runner = self._runners.get(key)
            if runner is None:
                runner = self._runners[key] = self._runner(x, key)
        return runner(x)

    def package_path(self, key: tuple) -> Path:
        if self._digest is None:
            self._digest = weights_digest(self.generator)
        what = {"weights": self._digest, "net": self.description, "input": list(key),
                "torch": torch.__version__, "machine": platform.machine(), "cpu": cpu_model(),
                "isa": torch.backends.cpu.get_cpu_capability()}  # fmt: skip
        name = hashlib.blake2b(json.dumps(what, sort_keys=True).encode(), digest_size=16)
        return cache_dir() / f"{name.hexdigest()}.pt2"

    def _runner(self, x: torch.Tensor, key: tuple) -> Runner:
        shape = "x".join(map(str, key[0]))
        path = self.package_path(key)
        if not path.exists():
            if not self.build:
                return self.generator
            log.info("compiling the generator for %s %s (%s mode) into %s: once per model, "
                     "input size and machine", shape, key[1], key[3], path.parent)  # fmt: skip
            try:
                build_package(self.generator, x, path)
            except Exception as e:  # no C++ compiler, an unsupported layer: run as it is
                why = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
                log.warning("could not compile the generator (%s); translating without", why)
                return self.generator
        try:
            runner = load_package(path)
        except Exception as e:  # a damaged or foreign file: run as it is
            log.warning("could not load %s (%s); translating without it (delete it to "
                        "rebuild)", path, type(e).__name__)  # fmt: skip
            return self.generator
        log.info("translating %s with the compiled generator %s", shape, path)
        return runner
