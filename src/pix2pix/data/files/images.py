"""Image files <-> arrays <-> tensors, with errors that name the file.

Arrays are (H, W, C) with C >= 1 and one of three depths: uint8, uint16 or float32
(float data holds values in [0, 1]). Tensors are (C, H, W) float32 in [-1, 1],
normalised from the array's own depth: uint8 / 255, uint16 / 65535, float as is.

Files: PNG, JPEG, BMP, TIFF, WebP, PPM/PGM through Pillow (8-bit, and 16-bit or float
grayscale); 16-bit colour PNG/TIFF, multi-page TIFF, plain TIFF (tifffile: float RGB,
N bands in one page) and `.npy` arrays through `formats.py`. Colour files with alpha
keep their three colour channels.
"""

from __future__ import annotations

import glob
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image

from pix2pix.data.files import formats
from pix2pix.data.files.formats import GRAY_MODES
from pix2pix.data.files.limits import check_pixels
from pix2pix.errors import UserError, setting
from pix2pix.fileio import atomic_write_bytes

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".npy",
)

Depth = Literal["uint8", "uint16", "float32"]
DEPTHS: tuple[Depth, ...] = get_args(Depth)
PEAK: dict[str, float] = {"uint8": 255.0, "uint16": 65535.0, "float32": 1.0}


def _natural_key(path: Path) -> list[object]:
    """Sort '2.jpg' before '10.jpg'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, in natural name order."""
    return sorted(
        (p for p in Path(folder).iterdir() if p.is_file() and is_image(p)), key=_natural_key
    )


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Image paths from files, folders and glob patterns, in the order given."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += list_images(path)
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(item):
            matches = sorted((Path(p) for p in glob.glob(item)), key=_natural_key)
            found += [p for p in matches if p.is_file() and is_image(p)]
        else:
            raise UserError(f"{item}: no such file or folder; check the path")
    if not found:
        raise UserError(f"no images found in {' '.join(inputs)}; give image files or folders")
    return found


def channels_of_mode(mode: str) -> int:
    """1 for grayscale Pillow modes, 3 for everything else (colour is kept as RGB)."""
    return 1 if mode in GRAY_MODES else 3


def depth_of_mode(mode: str) -> Depth:
    """The array depth a Pillow mode decodes to (32-bit integer images are read as uint16)."""
    if mode == "F":
        return "float32"
    return "uint16" if mode.startswith("I") else "uint8"


def depth_of(arr: np.ndarray) -> Depth:
    """'uint8', 'uint16' or 'float32'; any other dtype is a ValueError."""
    if arr.dtype.name not in DEPTHS:
        raise ValueError(f"image arrays are uint8, uint16 or float32, got {arr.dtype}")
    return arr.dtype.name  # type: ignore[return-value]


def widest(depths: list[str]) -> Depth:
    """The depth that holds all of `depths` without loss (uint8 < uint16 < float32)."""
    return max(depths, key=DEPTHS.index)  # type: ignore[return-value]


@dataclass(frozen=True)
class ImageInfo:
    """What a file's header says: size, channels (as read), depth and Pillow mode."""

    width: int
    height: int
    channels: int
    depth: Depth
    mode: str  # Pillow mode of the first page; "npy" for arrays


def _unreadable(path: Path, exc: BaseException) -> UserError:
    if isinstance(exc, Image.DecompressionBombError):  # Pillow's check, where ours is unset
        return UserError(
            f"{path}: too many pixels ({exc}); if the image is genuine, pass "
            f"{setting('--max-image-pixels')} with a larger count (0: no limit)"
        )
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return UserError(f"{path}: cannot read image ({reason}); replace or remove the file")


_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


TIFF_MODES = {(1, "uint8"): "L", (1, "uint16"): "I;16", (1, "float32"): "F", (3, "uint8"): "RGB"}


def image_info(path: Path, streamed: bool = False) -> ImageInfo:
    """Size, channels and depth from the file header, without decoding the pixels.

    `streamed`: the image will be read a band of rows at a time (`data.bands`), so only
    the guard against absurd sizes applies, not the one for whole-image decoding."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        w, h, c, depth = formats.npy_header(path)
        check_pixels(path, w, h)
        return ImageInfo(w, h, c, depth, "npy")  # type: ignore[arg-type]
    if path.suffix.lower() in (".tif", ".tiff") and (plain := formats.plain_tiff(path)):
        w, h, c, depth = plain  # tifffile: float RGB and N-band pages, that Pillow refuses
        check_pixels(path, w, h, streamed)
        return ImageInfo(w, h, c, depth, TIFF_MODES.get((c, depth), f"{c}x{depth}"))  # type: ignore[arg-type]
    try:
        with Image.open(path) as im:
            w, h, mode = im.width, im.height, im.mode
            check_pixels(path, w, h, streamed)
            if formats.is_multipage(im):
                channels, modes = formats.pages_header(im)
                return ImageInfo(w, h, channels, widest([depth_of_mode(m) for m in modes]), mode)
            depth = "uint16" if formats.is_deep_colour(im) else depth_of_mode(mode)
            return ImageInfo(w, h, channels_of_mode(mode), depth, mode)  # type: ignore[arg-type]
    except UserError:
        raise
    except _DECODE_ERRORS as exc:
        raise _unreadable(path, exc) from None


def convert(image: Image.Image, channels: int) -> Image.Image:
    """Convert a Pillow image to 8-bit L (1 channel) or RGB (3 channels)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    mode = "L" if channels == 1 else "RGB"
    if image.mode == mode:
        return image
    if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit grayscale: rescale
        arr = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.round(arr * 255.0 / peak).clip(0, 255).astype(np.uint8))
    return image.convert(mode)


def to_depth(arr: np.ndarray, depth: str) -> np.ndarray:
    """Rescale an image array to another depth (uint8 -> uint16 is exact: x 257)."""
    src = depth_of(arr)
    if src == depth:
        return arr
    if src == "uint8" and depth == "uint16":
        return arr.astype(np.uint16) * np.uint16(257)
    unit = arr.astype(np.float64) / PEAK[src]
    if depth == "float32":
        return unit.astype(np.float32)
    return np.round(unit.clip(0.0, 1.0) * PEAK[depth]).astype(depth)


def stack_channels(arrays: list[np.ndarray]) -> np.ndarray:
    """Concatenate (H, W, C_i) arrays along channels, at the widest of their depths."""
    depth = widest([depth_of(a) for a in arrays])
    return np.concatenate([to_depth(a, depth) for a in arrays], axis=2)


def luma(arr: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W, 1) ITU-R 601 luma, as Pillow's "L" conversion, at the same depth."""
    if arr.dtype == np.uint8:
        return np.asarray(Image.fromarray(arr).convert("L"))[:, :, None]
    y = arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    y = y if arr.dtype == np.float32 else np.round(y)
    return y.astype(arr.dtype)[:, :, None]


def with_channels(arr: np.ndarray, channels: int | None, source: object = "image") -> np.ndarray:
    """`arr` with `channels` channels: 3 -> 1 by luma, 1 -> 3 by repetition, else an error."""
    have = arr.shape[2]
    if channels is None or have == channels:
        return arr
    if have == 3 and channels == 1:
        return luma(arr)
    if have == 1 and channels == 3:
        return np.repeat(arr, 3, axis=2)
    raise UserError(
        f"{source}: has {have} channel(s) where {channels} are expected; "
        "give images with the channels the model was trained on"
    )


def _native(image: Image.Image, channels: int | None) -> np.ndarray:
    """Pixels of a loaded Pillow image at their own depth, (H, W, C).

    8-bit images asked for 1 or 3 channels are converted by Pillow (palette, alpha, CMYK,
    colour <-> gray); everything else keeps its own channels.
    """
    if formats.is_multipage(image):
        return formats.read_pages(image)
    if image.mode.startswith("I") or image.mode == "F":
        return formats.page_array(image)
    if channels in (1, 3):
        arr = np.asarray(convert(image, channels))
    else:
        arr = np.asarray(image.convert("L" if image.mode in GRAY_MODES else "RGB"))
    return arr[:, :, None] if arr.ndim == 2 else arr


def pil_to_array(image: Image.Image, channels: int | None = None) -> np.ndarray:
    """A Pillow image as an (H, W, C) array at its own depth (16-bit and float kept)."""
    return with_channels(_native(image, channels), channels)


def read_image(path: Path, channels: int | None = None) -> np.ndarray:
    """Decode a file to (H, W, C) at its own depth: uint8, uint16 or float32.

    `channels` (1, 3 or the file's own count; None keeps the file's) converts grayscale
    and colour as `with_channels` does. A broken file raises a UserError naming it.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            w, h, _, _ = formats.npy_header(path)
            check_pixels(path, w, h)
            arr = formats.read_npy(path)
        elif path.suffix.lower() in (".tif", ".tiff") and (plain := formats.plain_tiff(path)):
            check_pixels(path, plain[0], plain[1])
            arr = formats.read_plain_tiff(path)
        else:
            with Image.open(path) as im:
                check_pixels(path, im.width, im.height)
                if formats.is_deep_colour(im):
                    arr = formats.read_deep_colour(path)
                else:
                    im.load()
                    arr = _native(im, channels)
    except UserError:
        raise
    except _DECODE_ERRORS as exc:
        raise _unreadable(path, exc) from None
    return with_channels(arr, channels, path)


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """(H, W, 1 or 3) uint8, or (H, W, 1) uint16/float32 -> a Pillow L, RGB, I;16 or F image."""
    if arr.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(arr[:, :, 0]))
    if arr.shape[2] == 3 and arr.dtype == np.uint8:
        return Image.fromarray(arr)
    raise ValueError(f"Pillow holds no {arr.shape[2]}-channel {arr.dtype} image; use save_image")


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8, uint16 or float32 -> (C, H, W) float32 in [-1, 1] (float: x2 - 1)."""
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr)  # torch wants writable memory; views of Pillow data are not
    if arr.dtype == np.uint8:
        t = torch.from_numpy(arr).permute(2, 0, 1).contiguous().float()  # uint8 copy, then float
        return t.mul_(1 / 127.5).sub_(1.0)
    depth = depth_of(arr)
    t = torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1).contiguous()
    return t.mul_(2.0 / PEAK[depth]).sub_(1.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [-1, 1] -> (H, W, C) uint8."""
    t = ((t.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round()
    return t.to(torch.uint8).permute(1, 2, 0).numpy()


def from_tensor(t: torch.Tensor, depth: str = "uint8") -> np.ndarray:
    """(C, H, W) float in [-1, 1] -> (H, W, C) array of `depth` (the inverse of to_tensor)."""
    if depth == "uint8":
        return to_uint8(t)
    unit = (t.detach().float().cpu().clamp(-1, 1) + 1.0) * 0.5
    if depth == "float32":
        return unit.permute(1, 2, 0).contiguous().numpy()
    if depth != "uint16":
        raise ValueError(f"depth {depth!r} is not valid; choose one of: {', '.join(DEPTHS)}")
    levels = (unit * 65535.0).round().to(torch.int32)
    return levels.permute(1, 2, 0).numpy().astype(np.uint16)


def encode_image(arr: np.ndarray, suffix: str) -> bytes:
    """File bytes of an (H, W, C) array for a file ending in `suffix`, losslessly.

    .npy: any array. .tif/.tiff: 1 channel or 8-bit RGB as one page, 16-bit RGB through
    OpenCV, anything else one page per channel. .png: 1 or 3 channels of 8 or 16 bits.
    Other formats: 8-bit, 1 or 3 channels.
    """
    suffix = suffix.lower()
    channels, depth = arr.shape[2], depth_of(arr)
    if suffix == ".npy":
        return formats.npy_bytes(arr)
    if channels == 3 and depth == "uint16" and suffix in (".png", ".tif", ".tiff"):
        return formats.deep_colour_bytes(arr, suffix)
    if suffix in (".tif", ".tiff") and not (channels == 1 or (channels, depth) == (3, "uint8")):
        return formats.tiff_pages_bytes(arr)
    fits = channels in (1, 3) and (depth == "uint8" or (suffix == ".png" and depth == "uint16"))
    fits = fits or (suffix in (".tif", ".tiff") and channels == 1)
    if not fits:
        raise UserError(
            f"{suffix or 'this format'} cannot hold a {channels}-channel {depth} image "
            "without loss; write .tif or .npy"
        )
    buf = io.BytesIO()
    fmt = Image.registered_extensions().get(suffix, "PNG")
    array_to_pil(arr).save(buf, format=fmt)
    return buf.getvalue()


def save_image(arr: np.ndarray, path: Path) -> None:
    """Write an (H, W, C) array atomically; the suffix picks the format (see encode_image)."""
    atomic_write_bytes(Path(path), encode_image(arr, Path(path).suffix))


def output_suffix(channels: int, depth: str) -> str:
    """Where a translated image goes: .png for 1 or 3 channels of 8 or 16 bits, else .tif."""
    return ".png" if channels in (1, 3) and depth in ("uint8", "uint16") else ".tif"
