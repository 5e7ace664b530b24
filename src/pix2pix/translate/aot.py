"""Generators compiled ahead of time (AOTInductor), kept on disk per model and machine.

torch.compile pays its compilation (10-30 s on a 2-core CPU) in every process, so until
now only jobs of hundreds of images used it. An AOTInductor package is that compiled
generator (weights frozen into it, constant-folded and prepacked) as one file that loads
in a fraction of a second. `AotGenerator` stands in for the generator at inference: for
each input shape and inference mode it runs the package from the cache folder when one
is there, builds it first when allowed (`build`, or a shape the job `planned`), and
otherwise runs the generator as it is. A package is keyed by everything it depends on
(the weights' digest, the network's config, the input's shape, dtype and layout, the
mode, torch's version, the CPU and its instruction-set features), so a fine-tuned model
or another machine never picks up a stale one. The folder, its size cap and its
durability: `pix2pix.translate.aotcache`.

Paper mode (dropout on): a package never draws random numbers. Its dropout noise is
given as inputs, drawn here before each call exactly as eager `nn.Dropout` draws it
(ATen on the CPU: `noise = empty_like(x).bernoulli_(1 - p).div_(1 - p)`, then `x * noise`),
from the global generator in the order the layers run. So `translate --seed S` gives
eager's picture, bit for bit in the noise, whether or not a package exists, and leaves
the generator where eager leaves it (tiles and batches after it draw the same noise).
Batch norm runs on batch statistics in the package as in eager (running buffers unused).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from pix2pix.runtime import COMPILE_MIN_IMAGES, cpu_model
from pix2pix.translate import aotcache
from pix2pix.translate.aotcache import cache_dir

__all__ = ["AotGenerator", "build_package", "cache_dir", "load_package", "weights_digest"]
log = logging.getLogger(__name__)
Runner = Callable[..., torch.Tensor]
MaskSpec = tuple[list[int], list[int], str, float]  # shape, stride, dtype, p of one dropout
RANDOM_OPS = ("dropout", "bernoulli", "rand", "normal", "uniform", "multinomial")


def weights_digest(module: nn.Module) -> str:
    """A digest of every parameter and buffer (names, dtypes, shapes and values)."""
    h = hashlib.blake2b(digest_size=20)
    for name, t in sorted(module.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        t = t.detach().cpu().contiguous().reshape(-1)  # 0-d tensors too
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def dropouts(generator: nn.Module) -> list[nn.Module]:
    """The generator's dropout layers; refuses kinds whose noise is not elementwise."""
    found = [m for m in generator.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    other = {type(m).__name__ for m in found if type(m) is not nn.Dropout}
    if other:
        raise TypeError(f"no masked compilation for {', '.join(sorted(other))}")
    return found


@contextlib.contextmanager
def masked(generator: nn.Module, masks: Iterator[torch.Tensor] | None) -> Iterator[list]:
    """Within the block each dropout layer multiplies by the next of `masks` (None: takes
    its input as it is and records the spec of the mask it needs, in call order)."""
    specs: list[MaskSpec] = []

    def given(t: torch.Tensor, p: float) -> torch.Tensor:
        if masks is None:
            specs.append((list(t.shape), list(t.stride()), str(t.dtype), p))
            return t
        return t * next(masks)

    layers = dropouts(generator)
    for m in layers:
        m.forward = lambda t, p=m.p: given(t, p)  # an instance attribute: nn.Module calls it
    try:
        yield specs
    finally:
        for m in layers:
            del m.forward


def draw_masks(specs: list[MaskSpec], draw: bool = True) -> list[torch.Tensor]:
    """Dropout noise as eager nn.Dropout draws it, from the global generator, in order
    (`draw=False`: ones of the same layout, examples that leave the generator alone)."""
    out = []
    for shape, stride, dtype, p in specs:
        noise = torch.empty_strided(shape, stride, dtype=getattr(torch, dtype.split(".")[-1]))
        out.append(noise.bernoulli_(1 - p).div_(1 - p) if draw else noise.fill_(1))
    return out


class _WithMasks(nn.Module):
    """forward(x, *masks): the generator with its dropout noise given as inputs."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor, *masks: torch.Tensor) -> torch.Tensor:
        if not masks:  # eval mode (or no dropout): the dropout layers as they are
            return self.generator(x)
        with masked(self.generator, iter(masks)):
            return self.generator(x)


def build_package(generator: nn.Module, x: torch.Tensor, path: Path, info: dict) -> list[MaskSpec]:
    """Export `generator` (in its current mode) for inputs like `x`, compile it to `path`
    (weights frozen in) and publish it in the cache; returns the dropout inputs it takes
    (paper mode; none in eval mode)."""
    from torch._inductor import aoti_compile_and_package, config  # here: ~1 s to import

    specs: list[MaskSpec] = []
    if generator.training:
        with masked(generator, None) as specs:
            generator(x)  # one eager pass records the shapes of the dropout noise
    wrapper = _WithMasks(generator)
    program = torch.export.export(wrapper, (x, *draw_masks(specs, draw=False)))
    drawn = [
        n.target
        for n in program.graph.nodes
        if n.op == "call_function"
        and any(r in str(n.target) for r in RANDOM_OPS)
        and not (str(n.target).startswith("aten.dropout") and n.args[2:3] == (False,))  # off
    ]
    if drawn:  # noise the masks do not cover (a functional dropout): eager only
        raise TypeError(f"the exported generator draws random numbers itself ({drawn[0]})")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = aotcache.temporary(path, ".pt2")
    try:
        with config.patch(freezing=True):
            aoti_compile_and_package(program, package_path=str(tmp))
        aotcache.publish(tmp, path, {**info, "masks": specs})
    finally:
        tmp.unlink(missing_ok=True)
    aotcache.tidy(keep=path)
    return specs


def package_loader() -> type | None:
    """torch's own AOTInductor package loader (a private class), if this torch has it."""
    return getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)


def load_package(path: Path) -> Runner:
    """The compiled generator in `path` as a function of (x, *masks).

    Through the package loader itself where torch has it: `aoti_load_package` would
    import inductor and dynamo (~1 s) and compile and run six probe programs to compare
    the CPU's vector ISA with the one the package was built for (~1 s more), work the
    cache key (which includes the ISA) has already done."""
    loader_class = package_loader()
    if loader_class is None:  # another torch: the public way
        from torch._inductor import aoti_load_package

        return aoti_load_package(str(path))
    loader = loader_class(str(path), "model", False, 1, -1)

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        (y,) = loader.boxed_run(list(inputs))
        return y

    return run


def dense(x: torch.Tensor) -> tuple[torch.Tensor, str]:
    """`x` dense in the layout it is keyed by: a package indexes its input with the
    strides it was compiled for, so a view (a crop, `ab[:, :3]`) is copied first."""
    if x.is_contiguous(memory_format=torch.channels_last):
        return x, "nhwc"
    if x.is_contiguous():
        return x, "nchw"
    nhwc = x.ndim == 4 and x.stride(1) == 1 and x.shape[1] > 1  # a view of an NHWC tensor
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    return x.contiguous(memory_format=fmt), "nhwc" if nhwc else "nchw"


def key_record(digest: str, description: dict, key: tuple) -> dict:
    """What a cached file for input `key` depends on besides its kind: the weights'
    digest, the network, the input, torch, the CPU and its instruction-set features."""
    return {
        "weights": digest,
        "net": description,
        "input": list(key),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        **aotcache.machine(),
    }


class AotGenerator:
    """Callable like `generator` for inference; runs a cached compiled package per input
    shape and mode (`build`: compile a missing one first, else run the generator).

    `planned`: input shapes (B, C, H, W) the job runs often enough to compile even when
    `build` is off (`Pix2Pix.plan_compile`)."""

    def __init__(self, generator: nn.Module, description: dict, *, build: bool) -> None:
        self.generator = generator
        self.description = description  # what besides the weights defines the network
        self.build = build
        self.planned: frozenset[tuple[int, ...]] = frozenset()
        self._runners: dict[tuple, Runner] = {}
        self._digest: str | None = None
        self._lock = threading.Lock()

    def plan(self, batches: Mapping[tuple[int, int, int], int], channels: int, stride: int):
        """Compile (when none is cached) the padded shapes of the job's forward passes
        (B, H, W) that at least COMPILE_MIN_IMAGES images share."""
        self.planned = frozenset(
            (b, channels, -(-h // stride) * stride, -(-w // stride) * stride)
            for (b, h, w), images in batches.items()
            if images >= COMPILE_MIN_IMAGES
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mode = "paper" if self.generator.training else "eval"
        x, layout = dense(x)
        key = (tuple(x.shape), str(x.dtype), layout, mode)
        with self._lock:
            runner = self._runners.get(key)
            if runner is None:
                runner = self._runners[key] = self._runner(x, key)
        return runner(x)

    def what(self, key: tuple) -> dict:
        """Everything a package for `key` depends on."""
        if self._digest is None:
            self._digest = weights_digest(self.generator)
        return key_record(self._digest, self.description, key)

    def package_path(self, key: tuple) -> Path:
        name = hashlib.blake2b(json.dumps(self.what(key), sort_keys=True).encode(), digest_size=16)
        return cache_dir() / f"{name.hexdigest()}.pt2"

    def _runner(self, x: torch.Tensor, key: tuple) -> Runner:
        shape = "x".join(map(str, key[0]))
        path = self.package_path(key)
        record = aotcache.verified(path)
        if record is None and path.exists():  # (not one another process just evicted)
            log.warning(
                "%s is damaged (its size or digest is not the one recorded): removed; "
                "it is rebuilt when this size is compiled",
                path,
            )
            aotcache.remove(path)
        if record is None:
            if not (self.build or key[0] in self.planned):
                return self.generator
            log.info(
                "compiling the generator for %s %s (%s mode) into %s: once per model, "
                "input size and machine",
                shape,
                key[1],
                key[3],
                path.parent,
            )
            try:
                specs = build_package(self.generator, x, path, {"what": self.what(key)})
            except Exception as e:  # no C++ compiler, an unsupported layer: run as it is
                why = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
                log.warning("could not compile the generator (%s); translating without", why)
                return self.generator
        else:
            specs = [tuple(s) for s in record.get("masks", [])]
        try:
            package = load_package(path)
        except Exception as e:  # a foreign file: never again
            log.warning(
                "could not load %s (%s): removed; translating without it", path, type(e).__name__
            )
            aotcache.remove(path)
            return self.generator
        log.info("translating %s with the compiled generator %s", shape, path)
        return lambda x: package(x, *draw_masks(specs))
