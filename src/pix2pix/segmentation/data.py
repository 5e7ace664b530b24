"""Photo -> label-map pairs for training a segmenter, decoded once and kept in memory.

Pairs come from the same layouts as pix2pix data (aligned A|B files or A/ and B/
folders, `pix2pix.data.pairs.datasets.find_pairs`); `photo_side` says which side holds the
photo (facades: A). Label maps become class indices (`palette.py`). Every image is
resized to `size` x `size` (photos bicubic, class maps nearest) for training; a batch
is jittered by a random resize-and-crop and a horizontal flip drawn from
(seed, epoch, index), the same for photo and labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2pix.data.files.images import read_image, to_tensor
from pix2pix.data.files.limits import check_pixels
from pix2pix.data.pairs.folders import PairFiles, find_pairs
from pix2pix.errors import UserError, setting
from pix2pix.palette import IGNORE, Palette, colors_to_classes

_JITTER_STREAM = 7


def _raw_labels(path: Path) -> np.ndarray:
    """An index label image as stored: (H, W) values (palette PNGs give their indices)."""
    try:
        with Image.open(path) as im:
            check_pixels(path, im.width, im.height)
            im.load()
            arr = np.asarray(im if im.mode in ("P", "L") else im.convert("L"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"{path}: cannot read label image ({exc}); replace or remove it") from None
    return arr


def read_labels(
    pair: PairFiles, photo_side: str, palette: Palette | None, num_classes: int
) -> np.ndarray:
    """The pair's label map as (H, W) uint8 class indices (IGNORE where unlabelled)."""
    path = pair.a if pair.b is None or photo_side == "B" else pair.b
    if palette is not None:
        arr = read_image(path, 3)
        if pair.b is None:
            half = arr.shape[1] // 2
            arr = arr[:, half:] if photo_side == "A" else arr[:, :half]
        return colors_to_classes(arr, palette)
    arr = _raw_labels(path)
    if pair.b is None:
        half = arr.shape[1] // 2
        arr = arr[:, half:] if photo_side == "A" else arr[:, :half]
    bad = (arr >= num_classes) & (arr != IGNORE)
    if bad.any():
        raise UserError(
            f"{path}: label value {int(arr[bad].max())} is not a class of "
            f"{setting('--num-classes')} "
            f"{num_classes} (use 0..{num_classes - 1}, or {IGNORE} to ignore a pixel)"
        )
    return arr.astype(np.uint8)


def read_photo(pair: PairFiles, photo_side: str, channels: int = 3) -> np.ndarray:
    """The pair's photo as (H, W, channels) uint8."""
    if pair.b is not None:
        return read_image(pair.a if photo_side == "A" else pair.b, channels)
    arr = read_image(pair.a, channels)
    half = arr.shape[1] // 2
    return arr[:, :half] if photo_side == "A" else arr[:, half:]


def resize_photo(arr: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 -> (size, size, C), bicubic."""
    image = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    out = np.asarray(image.resize((size, size), Image.BICUBIC))
    return out.reshape(size, size, arr.shape[2])


def resize_labels(classes: np.ndarray, size: int) -> np.ndarray:
    """(H, W) uint8 class indices -> (size, size), nearest neighbour."""
    return np.asarray(Image.fromarray(classes).resize((size, size), Image.NEAREST))


class SegmentationData:
    """A folder's pairs at size S: photos (N, C, S, S) in [-1, 1], labels (N, S, S) int64."""

    def __init__(
        self,
        root: Path,
        layout: str,
        photo_side: str,
        palette: Palette | None,
        num_classes: int,
        size: int,
    ) -> None:
        self.pairs = find_pairs(root, layout)
        self.size = size
        photos, labels = [], []
        for pair in self.pairs:
            photo = read_photo(pair, photo_side)
            classes = read_labels(pair, photo_side, palette, num_classes)
            if classes.shape != photo.shape[:2]:
                raise UserError(
                    f"{pair.a}: label map {classes.shape[1]}x{classes.shape[0]} and photo "
                    f"{photo.shape[1]}x{photo.shape[0]} differ in size; align them"
                )
            photos.append(to_tensor(resize_photo(photo, size)))
            labels.append(torch.from_numpy(resize_labels(classes, size).astype(np.int64)))
        self.photos = torch.stack(photos)
        self.labels = torch.stack(labels)

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(
        self, indices: np.ndarray, seed: int, epoch: int, jitter: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Photos (B, C, S, S) and labels (B, S, S) int64, jittered per (seed, epoch, index)."""
        x, y = self.photos[indices], self.labels[indices]
        if not jitter:
            return x, y
        s = self.size
        xs, ys = [], []
        for j, index in enumerate(indices):
            rng = np.random.default_rng([seed, epoch, _JITTER_STREAM, int(index)])
            big = int(rng.integers(s, s + s // 8 + 1))  # up to 12.5% larger, then crop back
            top, left = (int(rng.integers(0, big - s + 1)) for _ in range(2))
            xi = torch.nn.functional.interpolate(
                x[j : j + 1], size=(big, big), mode="bilinear", align_corners=False
            )[0, :, top : top + s, left : left + s]
            yi = torch.nn.functional.interpolate(
                y[j : j + 1, None].float(), size=(big, big), mode="nearest"
            )[0, 0, top : top + s, left : left + s].long()
            if rng.random() < 0.5:
                xi, yi = xi.flip(-1), yi.flip(-1)
            xs.append(xi)
            ys.append(yi)
        return torch.stack(xs), torch.stack(ys)
