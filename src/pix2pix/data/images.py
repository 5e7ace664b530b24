"""Image files <-> arrays <-> tensors, with errors that name the file.

Arrays are (H, W, C) uint8; tensors are (C, H, W) float in [-1, 1].
"""

from __future__ import annotations

import glob
import io
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2pix.errors import UserError
from pix2pix.fileio import atomic_write_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")

# Pillow's default limit warns at ~89 Mpixel and raises at twice that; a decompression
# bomb becomes an error naming the file instead of a warning.
Image.MAX_IMAGE_PIXELS = 178_956_970


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


def _unreadable(path: Path, exc: BaseException) -> UserError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return UserError(f"{path}: cannot read image ({reason}); replace or remove the file")


def image_header(path: Path) -> tuple[int, int, str]:
    """(width, height, mode) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.width, im.height, im.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, exc) from None


def convert(image: Image.Image, channels: int) -> Image.Image:
    """Convert a Pillow image to L (1 channel) or RGB (3 channels)."""
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


def read_image(path: Path, channels: int) -> np.ndarray:
    """Decode a file to (H, W, channels) uint8; a broken file raises a UserError naming it."""
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(convert(im, channels))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _unreadable(path, exc) from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def pil_to_array(image: Image.Image, channels: int) -> np.ndarray:
    arr = np.asarray(convert(image, channels))
    return arr[:, :, None] if arr.ndim == 2 else arr


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """(H, W, 1 or 3) uint8 -> a Pillow L or RGB image."""
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 -> (C, H, W) float32 in [-1, 1]."""
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr)  # torch wants writable memory; views of Pillow data are not
    t = torch.from_numpy(arr).permute(2, 0, 1).contiguous().float()  # uint8 copy, then float
    return t.mul_(1 / 127.5).sub_(1.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [-1, 1] -> (H, W, C) uint8."""
    t = ((t.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round()
    return t.to(torch.uint8).permute(1, 2, 0).numpy()


def save_image(arr: np.ndarray, path: Path) -> None:
    """Write an (H, W, 1 or 3) uint8 array atomically; the suffix picks the format."""
    buf = io.BytesIO()
    image = array_to_pil(arr)
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    image.save(buf, format=fmt)
    atomic_write_bytes(Path(path), buf.getvalue())
