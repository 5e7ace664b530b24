"""Translation with a trained generator: any image size, the paper's or eval inference.

Two inference modes:

- ``paper`` (default): as in the paper (sec. 3.3), the generator runs as in training:
  dropout stays on and batch norm normalises with the statistics of the test batch.
  With batch size 1 that is instance normalisation. Outputs vary with the dropout seed
  (fixed by ``seed``) and, for batches > 1, with what else is in the batch.
- ``eval``: dropout off and batch norm with the running averages from training:
  deterministic, and independent of batching.

Images of any size are reflect-padded to a multiple of the generator's stride and the
output is cropped back, so an output always has its input's exact size. Inputs are read
at their own depth; outputs are written at the depth and in the colour space recorded in
the checkpoint (`data.output_depth`, `data.color_space`): `<stem>.png` for 1 or 3
channels of 8 or 16 bits, `<stem>.tif` (one page per channel) otherwise.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from pix2pix.checkpoint import GENERATOR_FILE, find_checkpoint, load_weights, read_meta
from pix2pix.config import RunConfig, check_seed
from pix2pix.data import formats
from pix2pix.data.datasets import oriented, read_side, side_header, split_aligned
from pix2pix.data.encoding import encode_input, image_channels, output_array
from pix2pix.data.folders import find_pairs
from pix2pix.data.images import (
    array_to_pil,
    expand_inputs,
    output_suffix,
    pil_to_array,
    read_image,
    save_image,
    with_channels,
)
from pix2pix.errors import UserError
from pix2pix.fileio import check_outputs, first_missing, remove_if_empty
from pix2pix.nets import build_generator
from pix2pix.nets.inference import inference_mode, run_any_size
from pix2pix.runtime import (
    DTYPES,
    Speed,
    compiled,
    memory_format,
    resolve_device,
    resolve_speed,
)


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
        self.generator = generator  # its mode is set per call and restored after
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
        load_weights(generator, ckpt / GENERATOR_FILE).eval()  # ours: at rest in eval mode
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
        self, arr: np.ndarray, *, eval_mode: bool = False, seed: int | None = 0
    ) -> np.ndarray:
        """Translate one (H, W, C) uint8/uint16/float32 array of any size into the output
        image (H, W, C_out) at the checkpoint's output depth (lab: RGB)."""
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        if self.read_channels is not None:
            arr = with_channels(arr, self.read_channels, "input array")
        x = encode_input(arr, self.color_space)[None]
        y = self.translate_tensor(x, eval_mode=eval_mode, seed=seed)
        return output_array(y[0], x[0], self.config.data)

    def translate(
        self,
        image: Image.Image | np.ndarray,
        *,
        eval_mode: bool = False,
        seed: int | None = 0,
    ) -> Image.Image:
        """Translate one Pillow image (or (H, W, C) array) of any size into a Pillow image.

        Outputs Pillow cannot hold (other than 1 or 3 channels of 8 bits, or 1 channel of
        16 bits or float) raise ValueError: use `translate_array`.
        """
        if isinstance(image, Image.Image):
            image = pil_to_array(image, self.read_channels)
        return array_to_pil(self.translate_array(image, eval_mode=eval_mode, seed=seed))


def load(path: str | Path, device: str = "auto") -> Pix2Pix:
    """Load a trained model from a run folder or checkpoint folder."""
    return Pix2Pix.load(path, device)


def read_input(model: Pix2Pix, path: Path, aligned: bool) -> np.ndarray:
    """The model input from an image file; from an A|B file, the half its direction reads."""
    if not aligned:
        return read_image(path, model.read_channels)
    direction = model.config.data.direction
    ch_a, ch_b = oriented(direction, model.in_channels, model.out_channels)
    if model.read_channels is None:  # lab: the input half as stored
        halves = split_aligned(read_image(path), None, None)
    else:
        halves = split_aligned(read_image(path, max(ch_a, ch_b)), ch_a, ch_b)
    return oriented(direction, *halves)[0]


def _items(model: Pix2Pix, inputs: list[str], paired: bool) -> list[tuple[str, tuple[Path, ...]]]:
    """(output name, input files) per image; with `paired`, the input side of datasets."""
    if not paired:
        return [(p.stem, (p,)) for p in expand_inputs(inputs)]
    items = []
    for folder in inputs:
        if not Path(folder).is_dir():
            raise UserError(f"{folder}: not a folder; --paired takes folders with A/ and B/")
        for pair in find_pairs(Path(folder), "paired"):
            files, _ = oriented(model.config.data.direction, pair.files_a, pair.files_b)
            items.append((pair.name, files))
    return items


def _accepts(want: int | None, channels: int) -> bool:
    """Whether an image of `channels` can be read as `want` (None: gray or colour, for lab)."""
    if want is None:
        return channels in (1, 3)
    return channels == want or {channels, want} <= {1, 3}


def _check_inputs(
    model: Pix2Pix, items: list[tuple[str, tuple[Path, ...]]], aligned: bool, suffix: str
) -> list[tuple[int, int]]:
    """Read every header (sizes of the translated parts); name the first bad file."""
    seen: dict[str, Path] = {}
    sizes = []
    want = model.read_channels
    for name, files in items:
        path = files[0]
        if name in seen:
            raise UserError(
                f"{path} and {seen[name]} would both be written as {name}{suffix}; "
                "translate them into different --out folders"
            )
        seen[name] = path
        width, height, side = side_header(files)
        if aligned and width % 2:
            raise UserError(
                f"{path}: width {width} is odd, so it is not an aligned A|B image; drop --aligned"
            )
        if not aligned and not _accepts(want, side.channels):
            takes = "grayscale or colour images" if want is None else f"{want} channel(s)"
            raise UserError(
                f"{path}: has {side.channels} channel(s), but the model takes {takes}; "
                "give images with the channels it was trained on"
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
    paired: bool = False,
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Translate image files/folders/globs into `out_dir/<stem>.png` (or `.tif`, see the
    module doc); returns the outputs.

    An output never replaces an input; it replaces another existing file only with
    `overwrite`. A run that fails before its first output leaves no `out_dir` behind.

    `aligned`: inputs are A|B files; `paired`: inputs are dataset folders with A/ and B/
    (or A1/, A2/, ... stacked as channels), of which the input side is read.
    Consecutive images of the same size share a batch (up to `batch_size`). Every input's
    header is read before anything is written, so a missing or non-image file stops the
    run before its first output.
    """
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size} is out of range; use a value >= 1")
    if aligned and paired:
        raise UserError("--aligned and --paired exclude each other; pass one")
    check_seed(seed)
    channels = image_channels(model.out_channels, model.color_space)
    if channels == 3 and model.output_depth == "uint16":
        formats.require_opencv("writing 16-bit colour outputs")
    suffix = output_suffix(channels, model.output_depth)
    items = _items(model, inputs, paired)
    sizes = _check_inputs(model, items, aligned, suffix)
    out_dir = Path(out_dir)
    targets = [(out_dir / f"{name}{suffix}", files) for name, files in items]
    check_outputs(out_dir, targets, overwrite)
    made = first_missing(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _translate_items(model, items, sizes, out_dir, suffix, batch_size=batch_size,
                                eval_mode=eval_mode, aligned=aligned, seed=seed,
                                progress=progress)  # fmt: skip
    finally:
        if made is not None:
            remove_if_empty(out_dir, made)  # a translation that failed before its first output


def _translate_items(
    model: Pix2Pix,
    items: list[tuple[str, tuple[Path, ...]]],
    sizes: list[tuple[int, int]],
    out_dir: Path,
    suffix: str,
    *,
    batch_size: int,
    eval_mode: bool,
    aligned: bool,
    seed: int,
    progress: bool,
) -> list[Path]:
    outputs: list[Path] = []
    bar = tqdm(total=len(items), unit="img", disable=not progress or None)

    def load(files: tuple[Path, ...]) -> torch.Tensor:
        if len(files) > 1:
            arr = read_side(files, model.read_channels)
        else:
            arr = read_input(model, files[0], aligned)
        return encode_input(arr, model.color_space)

    start = 0
    while start < len(items):
        end = start + 1
        while end < len(items) and end - start < batch_size and sizes[end] == sizes[start]:
            end += 1
        x = torch.stack([load(files) for _, files in items[start:end]])
        y = model.translate_tensor(x, eval_mode=eval_mode, seed=seed + start)
        for (name, _), out, inp in zip(items[start:end], y, x):
            target = out_dir / f"{name}{suffix}"
            save_image(output_array(out, inp, model.config.data), target)
            outputs.append(target)
        bar.update(end - start)
        start = end
    bar.close()
    return outputs
