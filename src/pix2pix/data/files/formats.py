"""Image files Pillow alone cannot hold without loss: arrays, multi-page TIFF, 16-bit colour.

- `.npy`: (H, W) or (H, W, C) arrays of uint8, uint16 or float32 (float64 is read as
  float32); loaded without pickle.
- multi-page TIFF: the pages (each L, I;16, F or RGB, all of one size) stacked along the
  channel axis: how N-band data is stored as an image file. Written one page per channel.
- 16-bit colour PNG and TIFF: Pillow decodes these to 8 bits, so they are read and
  written through OpenCV (the optional `opencv` extra); without it, a one-line error.
- plain TIFF (one page of interleaved gray, N-band or RGB samples of 8 or 16 bits or
  float32, as `translate` writes them): read with tifffile where it is installed (the
  `tiff` extra), which keeps what Pillow cannot (float RGB, N samples in one page).

Every function here takes or returns (H, W, C) arrays; `images.py` picks which to call.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image, ImageSequence

from pix2pix.errors import UserError

ARRAY_DTYPES = (np.uint8, np.uint16, np.float32)
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def require_module(name: str, what: str, extra: str, label: str = "") -> ModuleType:
    """The module `name`, or a UserError saying that `what` needs the `extra`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise UserError(
            f"{what} needs {label or name}; install it with: pip install 'pix2pix[{extra}]'"
        ) from None


def require_opencv(what: str, extra: str = "opencv") -> ModuleType:
    """The cv2 module, or a UserError saying that `what` needs the OpenCV extra."""
    return require_module("cv2", what, extra, "OpenCV")


# ---------------------------------------------------------------- .npy


def _is_image_array(shape: tuple[int, ...], dtype: np.dtype) -> bool:
    return len(shape) in (2, 3) and 0 not in shape and dtype.type in (*ARRAY_DTYPES, np.float64)


def _not_an_image(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> UserError:
    return UserError(
        f"{path}: array of shape {shape} and dtype {dtype} is not an image; save (H, W) or "
        "(H, W, C) arrays of uint8, uint16 or float32 (float values in [0, 1])"
    )


def _unreadable_array(path: Path, exc: BaseException) -> UserError:
    return UserError(f"{path}: cannot read array ({exc}); replace or remove the file")


def npy_header(path: Path) -> tuple[int, int, int, str]:
    """(width, height, channels, dtype name) of a .npy file, without reading its data."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise _unreadable_array(path, exc) from None
    shape, dtype = arr.shape, arr.dtype
    del arr
    if not _is_image_array(shape, dtype):
        raise _not_an_image(path, shape, dtype)
    name = "float32" if dtype == np.float64 else dtype.name
    return shape[1], shape[0], shape[2] if len(shape) == 3 else 1, name


def read_npy(path: Path) -> np.ndarray:
    """A .npy file as an (H, W, C) uint8, uint16 or float32 array."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise _unreadable_array(path, exc) from None
    if not isinstance(arr, np.ndarray) or not _is_image_array(arr.shape, arr.dtype):
        raise _not_an_image(path, getattr(arr, "shape", ()), getattr(arr, "dtype", None))
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr if arr.ndim == 3 else arr[:, :, None])


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


# ---------------------------------------------------------------- multi-page TIFF


def is_multipage(image: Image.Image) -> bool:
    return image.format == "TIFF" and getattr(image, "n_frames", 1) > 1


def page_array(page: Image.Image) -> np.ndarray:
    """One Pillow image of a lossless mode as (H, W, C): L, I;16*, I, F, RGB."""
    if page.mode.startswith("I;16"):
        arr = np.asarray(page).astype(np.uint16)
    elif page.mode == "I":
        arr = np.asarray(page)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError("32-bit integer values outside 0..65535; store them as float32")
        arr = arr.astype(np.uint16)
    elif page.mode == "F":
        arr = np.asarray(page, dtype=np.float32)
    elif page.mode in ("1", "L", "LA"):
        arr = np.asarray(page.convert("L"))
    else:
        arr = np.asarray(page.convert("RGB"))
    return arr[:, :, None] if arr.ndim == 2 else arr


def read_pages(image: Image.Image) -> np.ndarray:
    """All pages of a multi-page TIFF stacked as channels: (H, W, sum of page channels)."""
    pages = [page_array(page) for page in ImageSequence.Iterator(image)]
    sizes = {p.shape[:2] for p in pages}
    dtypes = {p.dtype for p in pages}
    if len(sizes) > 1 or len(dtypes) > 1:
        raise ValueError(f"pages differ in size or bit depth ({sizes}, {dtypes})")
    return np.concatenate(pages, axis=2)


def pages_header(image: Image.Image) -> tuple[int, list[str]]:
    """(channels, page modes) of a multi-page TIFF, reading headers only."""
    modes = []
    for page in ImageSequence.Iterator(image):
        modes.append(page.mode)
    channels = sum(1 if m in GRAY_MODES else 3 for m in modes)
    return channels, modes


def tiff_pages_bytes(arr: np.ndarray) -> bytes:
    """One page per channel (L, I;16 or F by dtype), deflate-compressed."""
    pages = [Image.fromarray(np.ascontiguousarray(arr[:, :, c])) for c in range(arr.shape[2])]
    buf = io.BytesIO()
    pages[0].save(
        buf, format="TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate"
    )
    return buf.getvalue()


# ---------------------------------------------------------------- 16-bit colour


def _rawmode(image: Image.Image) -> str:
    if not image.tile:
        return ""
    args = image.tile[0].args
    return str(args[0] if isinstance(args, tuple) else args)


def is_deep_colour(image: Image.Image) -> bool:
    """A colour image with 16 bits per sample (that Pillow would truncate to 8)."""
    return image.mode in ("RGB", "RGBA", "RGBX") and ";16" in _rawmode(image)


def read_deep_colour(path: Path) -> np.ndarray:
    """A 16-bit colour PNG/TIFF as (H, W, 3) uint16 RGB (alpha dropped, as for 8-bit)."""
    cv2 = require_opencv(f"{path}: reading a 16-bit colour image")
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError("OpenCV could not decode it as a colour image")
    return np.ascontiguousarray(arr[:, :, 2::-1])  # BGR(A) -> RGB


def deep_colour_bytes(arr: np.ndarray, suffix: str) -> bytes:
    """Encode an (H, W, 3) uint16 RGB array as 16-bit PNG or TIFF."""
    cv2 = require_opencv("writing a 16-bit colour image")
    ok, data = cv2.imencode(suffix, np.ascontiguousarray(arr[:, :, ::-1]))
    if not ok:
        raise UserError(f"OpenCV cannot write 16-bit colour {suffix} files; use .png or .tif")
    return data.tobytes()


# ---------------------------------------------------------------- plain TIFF (tifffile)

MINISBLACK, RGB, CONTIG, ALPHA = 1, 2, 1, (1, 2)  # TIFF tag values


def _plain_page(tf: object) -> object | None:
    """The only full-resolution page of a TiffFile if it is plain (module doc), else None."""
    pages = [p for p in tf.pages if not p.is_reduced]  # type: ignore[attr-defined]
    if len(pages) != 1:
        return None  # several pages: bands stored as pages, read by Pillow and stacked
    page = pages[0]
    samples, photometric = int(page.samplesperpixel), int(page.photometric)
    kind = (photometric == MINISBLACK and not set(map(int, page.extrasamples)) & set(ALPHA)) or (
        photometric == RGB and samples == 3
    )
    plain = kind and (samples == 1 or int(page.planarconfig) == CONTIG)
    plain = plain and int(page.imagedepth) == 1 and np.dtype(page.dtype) in ARRAY_DTYPES
    import tifffile  # a compression it has no codec for (LZW without imagecodecs): Pillow

    return page if plain and int(page.compression) in tifffile.TIFF.DECOMPRESSORS else None


def plain_tiff(path: Path) -> tuple[int, int, int, str] | None:
    """(width, height, channels, dtype name) of a plain TIFF (module doc) whose compression
    tifffile decodes, from its header; None for any other TIFF (or without tifffile):
    Pillow reads those."""
    if importlib.util.find_spec("tifffile") is None:
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            page = _plain_page(tf)
            if page is None:
                return None
            return (
                int(page.imagewidth),
                int(page.imagelength),
                int(page.samplesperpixel),
                np.dtype(page.dtype).name,
            )
    except (tifffile.TiffFileError, ValueError, OSError):
        return None  # not a TIFF tifffile reads: Pillow says why


def read_plain_tiff(path: Path) -> np.ndarray:
    """A plain TIFF (see `plain_tiff`) as (H, W, C), its samples as stored."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        page = _plain_page(tf)
        assert page is not None, path
        arr = page.asarray()  # type: ignore[attr-defined]
    return np.ascontiguousarray(arr if arr.ndim == 3 else arr[:, :, None])
