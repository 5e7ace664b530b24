"""Edge maps from photos (edges -> photo datasets like edges2shoes), by Canny through OpenCV.

OpenCV is optional: `pip install 'pix2pix[edges]'`; it is imported only when edges are
made. Edges are drawn black (0) on white (255), as in the published edges2* datasets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pix2pix.data import formats
from pix2pix.data.derive import OutLayout, derive_pairs
from pix2pix.data.images import luma, to_depth
from pix2pix.errors import UserError


def canny(photo: np.ndarray, low: float = 100.0, high: float = 200.0) -> np.ndarray:
    """(H, W, 1 or 3) image of any depth -> (H, W, 1) uint8 edges: 0 on edges, 255 elsewhere.

    The image is taken to 8-bit gray (ITU-R 601 luma) first; `low` and `high` are the
    hysteresis thresholds on that scale (L2 gradient magnitude).
    """
    cv2 = formats.require_opencv("pix2pix data edges", extra="edges")
    if photo.shape[2] not in (1, 3):
        raise UserError(f"edges are made from grayscale or colour images, not {photo.shape[2]}")
    gray = to_depth(photo, "uint8")
    gray = luma(gray) if gray.shape[2] == 3 else gray
    found = cv2.Canny(np.ascontiguousarray(gray[:, :, 0]), low, high, L2gradient=True)
    return (255 - found)[:, :, None]


def edges(
    src: str | Path,
    out: str | Path,
    *,
    low: float = 100.0,
    high: float = 200.0,
    layout: OutLayout = "paired",
    workers: int | None = None,
) -> list[Path]:
    """Photos -> (Canny edge map, photo) pairs."""
    if not 0 <= low <= high:
        raise UserError(f"--low {low} and --high {high}: use 0 <= low <= high")
    formats.require_opencv("pix2pix data edges", extra="edges")  # before writing anything
    return derive_pairs(
        src, out, lambda photo, _: canny(photo, low, high), layout=layout, workers=workers
    )
