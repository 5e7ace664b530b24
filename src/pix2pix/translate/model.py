"""`Pix2Pix`: a checkpoint's generator at inference, in the paper's or eval mode, any
size, whole or in tiles (the modes and formats: `pix2pix.translate`)."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from pix2pix.checkpoint import find_checkpoint, generator_file, load_weights, read_meta
from pix2pix.config import RunConfig
from pix2pix.data.files.encoding import encode_input, output_array
from pix2pix.data.files.images import (
    array_to_pil,
    pil_to_array,
    with_channels,
)
from pix2pix.methods import method_of
from pix2pix.nets.inference import inference_mode, run_any_size
from pix2pix.runtime import (
    DTYPES,
    Speed,
    available_memory,
    compiled,
    memory_format,
    resolve_device,
    resolve_speed,
)
from pix2pix.translate.aot import AotGenerator
from pix2pix.translate.onnxrt import cpu_runner
from pix2pix.translate.samples import encode_images, sample_codes
from pix2pix.translate.tiling import (
    TILE_STATS,
    ReadRows,
    TileStats,
    bytes_per_pixel,
    check_tiling,
    image_statistics,
    memory_tile,
    needs_tiles,
    tiled_blocks,
    tiled_rows,
)

TILE_BATCH = 4  # tiles per forward pass where that cannot change the result
MEMORY_FRACTION = 0.5  # of the available memory a forward pass may take by default


class Pix2Pix:
    """A trained generator and its config: `pix2pix.load(path).translate(image)`."""

    def __init__(
        self,
        generator: nn.Module,
        config: RunConfig,
        device: torch.device,
        speed: Speed | None = None,
        *,
        owned: bool = False,
    ) -> None:
        self.speed = speed or resolve_speed(device, "infer")
        # Inference in bf16/fp16 casts the weights once (autocast would re-cast all 54M of
        # them on every call). A module needing a cast or a new layout is copied first:
        # the caller's module (a trainer's generator, say) is never changed; one `load`
        # built for this model (`owned`) is converted in place (no second copy in memory).
        self.dtype = DTYPES[self.speed.precision]
        fmt = memory_format(self.speed)
        first = next(generator.parameters())
        if first.dtype != self.dtype or first.device != device or self.speed.channels_last:
            generator = generator if owned else copy.deepcopy(generator)
            generator = generator.to(device, self.dtype, memory_format=fmt)
            owned = True
        self.generator = generator  # its mode is set per call and restored after
        self.method = method_of(config)
        # inputs beyond the image the method's generator takes (a latent code, a label map)
        self.extra_inputs = self.method.extra_inputs(config)
        self._run = compiled(self.generator, self.speed, "infer")
        if device.type == "cpu":
            self._run = cpu_runner(self.generator, config, self.speed, owned) or self._run
        self.config = config
        self.device = device
        self._lock = threading.RLock()  # inference toggles module modes: one call at a time
        self._per_pixel: float | None = None  # forward-pass bytes per input pixel, once
        self.path: Path | None = None  # the checkpoint folder, when loaded from one
        self._encoder: nn.Module | None = None

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        *,
        precision: str = "auto",
        channels_last: str = "auto",
        compile: str = "auto",
        images: int | None = None,
        weights: str = "auto",
        backend: str = "auto",
        quantize: str = "off",
    ) -> Pix2Pix:
        """From a checkpoint folder or a run folder (its latest/); no training flags needed.

        precision, channels_last, compile: 'auto' takes the measured defaults for the device
        (see `pix2pix.runtime.default_speed`); 'fp32'/'bf16'/'fp16' and 'on'/'off' force.
        images: the size of the job, if known ('auto' compiles only for large ones).
        weights: auto (the EMA average when the checkpoint has one), ema or raw.
        """
        ckpt = find_checkpoint(Path(path))
        config, _ = read_meta(ckpt)
        method = method_of(config)
        file = generator_file(ckpt, weights, method.inference)
        with torch.device("meta"):  # the weights come from the file: skip the random init
            generator = method.inference_module(config, init=False)
        load_weights(generator, file, assign=True)
        if any(t.is_meta for t in generator.buffers()):  # a buffer the file does not hold
            generator = load_weights(method.inference_module(config, init=False), file)
        generator.eval()  # ours: at rest in eval mode
        dev = resolve_device(device)
        speed = resolve_speed(
            dev, "infer", precision, channels_last, compile, images, backend, quantize
        )
        model = cls(generator, config, dev, speed, owned=True)
        model.path = ckpt  # where the method's other modules are (an encoder)
        return model

    def plan_compile(self, batches: Mapping[tuple[int, int, int], int]) -> None:
        """Tell the compile cache what a job will run: images per forward-pass shape
        (B, H, W). Shapes of at least COMPILE_MIN_IMAGES images get a package compiled
        (when none is cached), others run as they are: a compilation (~20 s and 100+ MB
        for unet_256) is repaid only after a couple of hundred images."""
        if isinstance(self._run, AotGenerator):
            self._run.plan(batches, self.in_channels, self.stride)

    def encode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) (B, nz) of output-side images y (B, C_out, H, W) in [-1, 1]."""
        return encode_images(self, y)

    def sample_z(self, n: int, seed: int | None = None) -> torch.Tensor:
        """`n` codes (n, nz) ~ N(0, I), the same for a seed on every device and path."""
        return sample_codes(self, n, seed)

    def __repr__(self) -> str:
        m, params = self.config.model, sum(p.numel() for p in self.generator.parameters())
        extra = "".join(f", takes {s.name} ({s.channels})" for s in self.extra_inputs)
        return (
            f"Pix2Pix({m.method} {m.generator}, {params / 1e6:.1f}M parameters, "
            f"{self.in_channels} -> {self.out_channels} channels{extra}; {self.device}, "
            f"{self.speed}; {self.path or 'not from a checkpoint folder'})"
        )

    @property
    def in_channels(self) -> int:
        return int(self.config.model.in_channels)

    @property
    def out_channels(self) -> int:
        return int(self.config.model.out_channels)

    @property
    def stride(self) -> int:
        """Height and width are padded internally to multiples of this."""
        return int(self.generator.stride)

    def translate_tensor(
        self,
        x: torch.Tensor,
        *,
        eval_mode: bool = False,
        seed: int | None = 0,
        tile: int | None = None,
        overlap: int = 0,
        tile_stats: TileStats = "tile",
        on_tile: Callable[[int, int], None] | None = None,
        extra: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(B, C_in, H, W) in [-1, 1], any H and W -> (B, C_out, H, W) in [-1, 1].

        `seed` fixes the dropout noise of paper mode (None: use the global RNG as it is).
        `tile`: translate in overlapping tiles of that size (a multiple of `stride`),
        blended over `overlap` pixels (`nets.tiling`); images no larger than a tile are
        not cut. `tile_stats="image"` normalises every tile with the whole image's batch
        statistics pooled over the tiles in paper mode (eval mode uses the running ones).
        `on_tile(done, total)` follows the tiles (a progress bar). `extra`: the method's
        inputs beyond the image by name (`extra_inputs`; those not given take the method's
        default), cut into tiles with the image where they are spatial.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        with self._inference(eval_mode, seed):
            x = x.to(self.device, self.dtype, memory_format=memory_format(self.speed))
            extras = self.method.default_extras(self.config, x, dict(extra or {}))
            extras = [e.to(self.device, self.dtype) for e in extras]
            call = self.method.inference_call(self.config, extras, self.stride)
            spatial = [e for e, s in zip(extras, self.extra_inputs) if s.kind == "spatial"]
            x = torch.cat([x, *spatial], dim=1) if spatial else x  # tiled together
            if not needs_tiles(*x.shape[-2:], tile):
                y = call(self._run, x)
            else:
                read = lambda y0, y1, x0, x1: x[:, :, y0:y1, x0:x1]  # noqa: E731
                shape = (x.shape[0], *x.shape[2:])
                rows = self._tiled(
                    read, shape, eval_mode, tile, overlap, tile_stats, on_tile, call=call
                )
                y = torch.cat([r for _, _, r in rows], dim=2)
        return y.float().cpu()

    def translate_rows(
        self,
        read: ReadRows,
        shape: tuple[int, int, int],
        *,
        tile: int,
        overlap: int = 0,
        eval_mode: bool = False,
        seed: int | None = 0,
        tile_stats: TileStats = "tile",
        on_tile: Callable[[int, int], None] | None = None,
        blocks: bool = False,
    ) -> Iterator[tuple[Any, ...]]:
        """Tiled translation of an image too large to hold, yielded as it is finished.

        `read(y0, y1, x0, x1)` gives an input window as (B, C_in, rows, cols) in [-1, 1]
        (on any device); `shape` is (B, H, W). Yields (first row, end row, (B, C_out, rows,
        W) float32 on the CPU) top to bottom; with `blocks`, (y0, y1, x0, x1, (B, C_out,
        rows, cols)) blocks (`nets.tiling.tiled_blocks`), so that not even a band of the
        output is held in float. The same outputs as `translate_tensor(..., tile=tile)`.
        """
        fmt = memory_format(self.speed)
        on_device = lambda *box: read(*box).to(self.device, self.dtype, memory_format=fmt)  # noqa: E731
        with self._inference(eval_mode, seed):
            if not needs_tiles(*shape[1:], tile):
                y = run_any_size(self._run, on_device(0, shape[1], 0, shape[2]), self.stride)
                y = y.float().cpu()
                yield (0, shape[1], 0, shape[2], y) if blocks else (0, shape[1], y)
                return
            yield from self._tiled(
                on_device, shape, eval_mode, tile, overlap, tile_stats, on_tile, blocks
            )

    @contextlib.contextmanager
    def _inference(self, eval_mode: bool, seed: int | None) -> Iterator[None]:
        """One call at a time, no autograd, the mode asked for, and `seed`'s dropout noise."""
        devices = [self.device] if self.device.type == "cuda" else []
        with (
            self._lock,
            torch.no_grad(),
            torch.random.fork_rng(devices=devices, enabled=seed is not None),
            inference_mode(self.generator, eval_mode),
        ):
            if seed is not None:  # on the CPU its generator alone (no lazy device seeding)
                cpu = self.device.type == "cpu"
                (torch.default_generator.manual_seed if cpu else torch.manual_seed)(seed)
            yield

    def tile_for(self, height: int, width: int, budget: int | None = None) -> int | None:
        """The tile that keeps one forward pass of a `height` x `width` image within
        `budget` bytes (default: half the memory available now); None when it fits whole.
        The cost per pixel is an upper bound measured on the generator itself, once."""
        if self._per_pixel is None:
            with self._lock:
                extras = lambda x: self.method.default_extras(self.config, x, None)  # noqa: E731
                self._per_pixel = bytes_per_pixel(
                    self.generator, self.in_channels, self.stride, self.dtype, extras
                )
        if budget is None:
            budget = int(available_memory(self.device) * MEMORY_FRACTION)
        return memory_tile(height, width, self.stride, self._per_pixel, budget)

    def _tiled(
        self,
        read: ReadRows,
        shape: tuple[int, int, int],
        eval_mode: bool,
        tile: int,
        overlap: int,
        stats: TileStats,
        on_tile: Callable[[int, int], None] | None,
        blocks: bool = False,
        call: Callable[[Callable[..., torch.Tensor], torch.Tensor], torch.Tensor] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        check_tiling(tile, overlap, self.stride)
        if stats not in TILE_STATS:
            raise ValueError(f"tile_stats {stats!r} is not valid; choose one of: tile, image")
        shared = stats == "image" and not eval_mode
        if shared and self.extra_inputs:
            raise ValueError("tile_stats 'image' takes a generator of the image alone; use 'tile'")
        call = call or self.method.inference_call(self.config, (), self.stride)
        # image statistics swap batch-norm buffers: run the module, not a frozen graph
        net = self.generator if shared else self._run
        scope = (
            image_statistics(self.generator, (read, shape), tile, overlap, self.stride)
            if shared
            else contextlib.nullcontext()
        )
        # tiles share a forward pass only where normalisation is batch-independent
        batch = TILE_BATCH if (eval_mode or shared) else 1
        with scope:
            run = lambda t: call(net, t)  # noqa: E731
            tiled = tiled_blocks if blocks else tiled_rows
            yield from tiled(run, read, shape, tile, overlap, batch, on_tile)

    @property
    def color_space(self) -> str:
        return self.config.data.color_space

    @property
    def read_channels(self) -> int | None:
        """Channels an input image is read with (None in lab mode: gray or colour)."""
        return None if self.color_space == "lab" else self.in_channels

    @property
    def output_depth(self) -> str:
        return self.config.data.written_depth

    def translate_array(
        self, arr: np.ndarray, *, eval_mode: bool = False, seed: int | None = 0, **tiling: Any
    ) -> np.ndarray:
        """Translate one (H, W, C) uint8/uint16/float32 array of any size into the output
        image (H, W, C_out) at the checkpoint's output depth (lab: RGB). `tiling`: the
        `tile`, `overlap` and `tile_stats` of `translate_tensor`."""
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        if self.read_channels is not None:
            arr = with_channels(arr, self.read_channels, "input array")
        x = encode_input(arr, self.color_space)[None]
        y = self.translate_tensor(x, eval_mode=eval_mode, seed=seed, **tiling)
        return output_array(y[0], x[0], self.config.data)

    def translate(
        self,
        image: Image.Image | np.ndarray,
        *,
        eval_mode: bool = False,
        seed: int | None = 0,
        **tiling: Any,
    ) -> Image.Image:
        """Translate one Pillow image (or (H, W, C) array) of any size into a Pillow image
        (`tiling` as for `translate_tensor`: tile=N, overlap=M, tile_stats).

        Outputs Pillow cannot hold (other than 1 or 3 channels of 8 bits, or 1 channel of
        16 bits or float) raise ValueError: use `translate_array`.
        """
        if isinstance(image, Image.Image):
            image = pil_to_array(image, self.read_channels)
        return array_to_pil(self.translate_array(image, eval_mode=eval_mode, seed=seed, **tiling))


# `pix2pix.load(path, device, precision=..., compile=...)`: the classmethod itself, so the
# two take the same options with the same defaults
load = Pix2Pix.load
