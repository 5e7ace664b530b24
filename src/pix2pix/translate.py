"""Translation with a trained generator: any image size, the paper's or eval inference.

Two inference modes:

- ``paper`` (default): as in the paper (sec. 3.3), the generator runs as in training:
  dropout stays on and batch norm normalises with the statistics of the test batch.
  With batch size 1 that is instance normalisation. Outputs vary with the dropout seed
  (fixed by ``seed``) and, for batches > 1, with what else is in the batch.
- ``eval``: dropout off and batch norm with the running averages from training:
  deterministic, and independent of batching.

Images of any size are reflect-padded to a multiple of the generator's stride and the
output is cropped back, so an output always has its input's exact size.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from pix2pix.checkpoint import GENERATOR_FILE, find_checkpoint, load_weights, read_meta
from pix2pix.config import RunConfig
from pix2pix.data.datasets import split_aligned
from pix2pix.data.images import (
    array_to_pil,
    expand_inputs,
    image_header,
    pil_to_array,
    read_image,
    save_image,
    to_tensor,
    to_uint8,
)
from pix2pix.errors import UserError
from pix2pix.nets import build_generator
from pix2pix.nets.padding import run_any_size
from pix2pix.runtime import (
    DTYPES,
    Speed,
    compiled,
    memory_format,
    resolve_device,
    resolve_speed,
)


@contextlib.contextmanager
def inference_mode(net: nn.Module, eval_mode: bool) -> Iterator[None]:
    """Run `net` in eval mode, or in the paper's mode without touching its buffers.

    Paper mode puts modules in training mode (dropout on, batch norm on batch statistics)
    but stops batch norm from updating its running averages, so translating never
    changes the model.
    """
    if eval_mode:
        net.eval()
        yield
        return
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    tracking = [m.track_running_stats for m in norms]
    net.train()
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m, flag in zip(norms, tracking):
            m.track_running_stats = flag
        net.eval()


class Pix2Pix:
    """A trained generator and its config: `pix2pix.load(path).translate(image)`."""

    def __init__(
        self,
        generator: nn.Module,
        config: RunConfig,
        device: torch.device,
        speed: Speed | None = None,
    ) -> None:
        self.speed = speed or resolve_speed(device, "infer")
        # Inference in bf16/fp16 casts the weights once (autocast would re-cast all 54M of
        # them on every call). A module needing a cast or a new layout is copied first:
        # the caller's module (a trainer's generator, say) is never changed.
        self.dtype = DTYPES[self.speed.precision]
        fmt = memory_format(self.speed)
        first = next(generator.parameters())
        if first.dtype != self.dtype or first.device != device or self.speed.channels_last:
            generator = copy.deepcopy(generator).to(device, self.dtype, memory_format=fmt)
        self.generator = generator.eval()
        self._run = compiled(self.generator, self.speed, "infer")
        self.config = config
        self.device = device
        self._lock = threading.Lock()  # inference toggles module modes: one call at a time

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
    ) -> Pix2Pix:
        """From a checkpoint folder or a run folder (its latest/); no training flags needed.

        precision, channels_last, compile: 'auto' takes the measured defaults for the device
        (see `pix2pix.runtime.default_speed`); 'fp32'/'bf16'/'fp16' and 'on'/'off' force.
        images: the size of the job, if known ('auto' compiles only for large ones).
        """
        ckpt = find_checkpoint(Path(path))
        config, _ = read_meta(ckpt)
        generator = build_generator(config.model, init=False)
        load_weights(generator, ckpt / GENERATOR_FILE)
        dev = resolve_device(device)
        speed = resolve_speed(dev, "infer", precision, channels_last, compile, images)
        return cls(generator, config, dev, speed)

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
        self, x: torch.Tensor, *, eval_mode: bool = False, seed: int | None = 0
    ) -> torch.Tensor:
        """(B, C_in, H, W) in [-1, 1], any H and W -> (B, C_out, H, W) in [-1, 1].

        `seed` fixes the dropout noise of paper mode (None: use the global RNG as it is).
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        devices = [self.device] if self.device.type == "cuda" else []
        with (
            self._lock,
            torch.no_grad(),
            torch.random.fork_rng(devices=devices, enabled=seed is not None),
            inference_mode(self.generator, eval_mode),
        ):
            if seed is not None:
                torch.manual_seed(seed)
            x = x.to(self.device, self.dtype, memory_format=memory_format(self.speed))
            y = run_any_size(self._run, x, self.stride)
        return y.float().cpu()

    def translate(
        self,
        image: Image.Image | np.ndarray,
        *,
        eval_mode: bool = False,
        seed: int | None = 0,
    ) -> Image.Image:
        """Translate one Pillow image (or (H, W, C) uint8 array) of any size."""
        arr = pil_to_array(image, self.in_channels) if isinstance(image, Image.Image) else image
        if arr.ndim == 2:
            arr = arr[:, :, None]
        y = self.translate_tensor(to_tensor(arr)[None], eval_mode=eval_mode, seed=seed)
        return array_to_pil(to_uint8(y[0]))


def load(path: str | Path, device: str = "auto") -> Pix2Pix:
    """Load a trained model from a run folder or checkpoint folder."""
    return Pix2Pix.load(path, device)


def _input_channels(model: Pix2Pix) -> tuple[int, int, bool]:
    """(A channels, B channels, input is A) for the model's direction."""
    c_in, c_out = model.in_channels, model.out_channels
    if model.config.data.direction == "AtoB":
        return c_in, c_out, True
    return c_out, c_in, False


def read_input(model: Pix2Pix, path: Path, aligned: bool) -> np.ndarray:
    """The model input from an image file; from an A|B file, the half its direction reads."""
    if not aligned:
        return read_image(path, model.in_channels)
    ch_a, ch_b, input_is_a = _input_channels(model)
    half_a, half_b = split_aligned(read_image(path, max(ch_a, ch_b)), ch_a, ch_b)
    return half_a if input_is_a else half_b


def _check_inputs(paths: list[Path], aligned: bool) -> list[tuple[int, int]]:
    """Read every header (sizes of the translated parts); name the first bad file."""
    seen: dict[str, Path] = {}
    sizes = []
    for path in paths:
        if path.stem in seen:
            raise UserError(
                f"{path} and {seen[path.stem]} would both be written as {path.stem}.png; "
                "translate them into different --out folders"
            )
        seen[path.stem] = path
        width, height, _ = image_header(path)
        if aligned and width % 2:
            raise UserError(
                f"{path}: width {width} is odd, so it is not an aligned A|B image; drop --aligned"
            )
        sizes.append((width // 2 if aligned else width, height))
    return sizes


def translate_files(
    model: Pix2Pix,
    inputs: list[str],
    out_dir: str | Path,
    *,
    batch_size: int = 1,
    eval_mode: bool = False,
    aligned: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> list[Path]:
    """Translate image files/folders/globs into `out_dir/<stem>.png`; returns the outputs.

    Consecutive images of the same size share a batch (up to `batch_size`). Every input's
    header is read before anything is written, so a missing or non-image file stops the
    run before its first output.
    """
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size} is out of range; use a value >= 1")
    paths = expand_inputs(inputs)
    sizes = _check_inputs(paths, aligned)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: list[Path] = []
    bar = tqdm(total=len(paths), unit="img", disable=not progress or None)
    start = 0
    while start < len(paths):
        end = start + 1
        while end < len(paths) and end - start < batch_size and sizes[end] == sizes[start]:
            end += 1
        x = torch.stack([to_tensor(read_input(model, p, aligned)) for p in paths[start:end]])
        y = model.translate_tensor(x, eval_mode=eval_mode, seed=seed + start)
        for path, out in zip(paths[start:end], y):
            target = out_dir / f"{path.stem}.png"
            save_image(to_uint8(out), target)
            outputs.append(target)
        bar.update(end - start)
        start = end
    bar.close()
    return outputs
