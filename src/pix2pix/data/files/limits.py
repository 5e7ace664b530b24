"""How large a local image may be before it is decoded (a decompression-bomb guard)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from pix2pix.errors import UserError, setting

# Decompression-bomb guard for local files: an image whose header declares more pixels
# than the limit is refused, naming the file, before any pixel is decoded. The default is
# Pillow's own warning threshold (1024**3 // 4 // 3 = 89,478,485 pixels, about 9459 x
# 9459, 268 MB of 8-bit RGB); `--max-image-pixels N` (0: none) or the environment
# variable below changes it for users who really have gigapixel images.
DEFAULT_MAX_PIXELS = 89_478_485
PIXEL_LIMIT_ENV = "PIX2PIX_MAX_IMAGE_PIXELS"
# An image read and written a band of rows at a time (`translate --tile`) costs memory by
# its width, not its area, so it is not held to the limit above; it is refused only when
# its header claims an absurd size: a side over 2**20 or over 2**34 pixels (17 gigapixels,
# 131072 x 131072), or over the limit above if that is larger. With no limit, no guard.
STREAMED_MAX_SIDE = 2**20
STREAMED_MAX_PIXELS = 2**34


def max_image_pixels() -> int | None:
    """The pixel limit for local images (None: no limit), from PIX2PIX_MAX_IMAGE_PIXELS."""
    raw = os.environ.get(PIXEL_LIMIT_ENV, "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise UserError(f"{PIXEL_LIMIT_ENV}={raw!r} is not valid; use a pixel count (0: no limit)")
    return value or None


def set_max_image_pixels(limit: int | None) -> None:
    """Set the local-image pixel limit for this process and the ones it starts (None or
    0: no limit). Process-wide: call it from an entry point. Pillow's own bomb check is
    switched off, so that this limit alone decides (and its error names the file)."""
    if limit is not None and limit < 0:
        raise UserError(
            f"{setting('--max-image-pixels')} {limit} is out of range; use >= 0 (0: no limit)"
        )
    os.environ[PIXEL_LIMIT_ENV] = str(limit or 0)
    Image.MAX_IMAGE_PIXELS = None


def check_pixels(path: Path, width: int, height: int, streamed: bool = False) -> None:
    """Refuse an image larger than `max_image_pixels()` (a UserError naming the file);
    `streamed` (read in bands): only an absurd size (see STREAMED_MAX_PIXELS)."""
    limit = max_image_pixels()
    if streamed and limit is not None:
        most = max(limit, STREAMED_MAX_PIXELS)
        if max(width, height) > STREAMED_MAX_SIDE or width * height > most:
            raise UserError(
                f"{path}: {width}x{height} is too large even to translate in bands (at most "
                f"{STREAMED_MAX_SIDE} a side and {most:,} pixels); "
                f"if the image is genuine, pass {setting('--max-image-pixels')} 0 (no limit)"
            )
        return
    if limit is not None and width * height > limit:
        raise UserError(
            f"{path}: {width}x{height} = {width * height:,} pixels is over the limit of "
            f"{limit:,} (a guard against decompression bombs); if the image is genuine, "
            f"pass {setting('--max-image-pixels')} with a larger count (0: no limit)"
        )
