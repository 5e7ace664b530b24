"""Joint augmentation: input and target get the same resize, crop and flip.

Parameters are sampled once per pair (`sample_params`) and applied to both images
(`apply_params`), so the pair stays aligned pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pix2pix.config import DataConfig


@dataclass(frozen=True)
class JointParams:
    """One pair's augmentation: resize to `size` (w, h), crop `crop` (x, y, w, h), flip."""

    size: tuple[int, int]
    crop: tuple[int, int, int, int] | None
    flip: bool


def resized_size(width: int, height: int, cfg: DataConfig) -> tuple[int, int]:
    """Image size (w, h) after the resize step of `cfg.preprocess`, before cropping."""
    if cfg.resize == "square":
        return cfg.load_size, cfg.load_size
    if cfg.resize == "width":
        h = round(cfg.load_size * height / width)
        if cfg.crops:
            h = max(h, cfg.crop_size)  # keep the crop possible
        return cfg.load_size, h
    return width, height  # crop, none


def output_size(width: int, height: int, cfg: DataConfig) -> tuple[int, int]:
    """Training image size (w, h) for a source image of `width` x `height`."""
    w, h = resized_size(width, height, cfg)
    if cfg.crops:
        return cfg.crop_size, cfg.crop_size
    return w, h


def sample_params(
    width: int, height: int, cfg: DataConfig, rng: np.random.Generator
) -> JointParams:
    """Draw one pair's resize/crop/flip for a `width` x `height` source image."""
    w, h = resized_size(width, height, cfg)
    crop = None
    if cfg.crops:
        size = cfg.crop_size
        x = int(rng.integers(0, w - size + 1))
        y = int(rng.integers(0, h - size + 1))
        crop = (x, y, size, size)
    flip = bool(cfg.flip and rng.random() < 0.5)
    return JointParams(size=(w, h), crop=crop, flip=flip)


def resize_array(
    arr: np.ndarray, size: tuple[int, int], resample: int = Image.BICUBIC
) -> np.ndarray:
    """Resize an (H, W, C) uint8, uint16 or float32 array to `size` (w, h), keeping its depth.

    8-bit L or RGB: one Pillow call. Other 8-bit channel counts: per channel in L.
    16-bit and float: per channel in Pillow's 32-bit float mode "F", so no precision is
    lost; 16-bit results are rounded and clipped to 0..65535.
    """
    w, h = size
    if arr.dtype == np.uint8:
        if arr.shape[2] in (1, 3):  # one Pillow call for L or RGB
            image = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
            return np.asarray(image.resize(size, resample)).reshape(h, w, arr.shape[2])
        channels = [
            np.asarray(Image.fromarray(arr[:, :, c]).resize(size, resample))
            for c in range(arr.shape[2])
        ]
        return np.stack(channels, axis=2)
    planes = [
        np.asarray(Image.fromarray(arr[:, :, c].astype(np.float32)).resize(size, resample))
        for c in range(arr.shape[2])
    ]
    out = np.stack(planes, axis=2)
    if arr.dtype == np.uint16:
        return np.round(out).clip(0, 65535).astype(np.uint16)
    return out.astype(arr.dtype)


def apply_params(arr: np.ndarray, params: JointParams, resample: int = Image.BICUBIC) -> np.ndarray:
    """Apply resize (bicubic; label maps: nearest), crop and flip to an (H, W, C) array of
    any depth."""
    if (arr.shape[1], arr.shape[0]) != params.size:
        arr = resize_array(arr, params.size, resample)
    if params.crop is not None:
        x, y, w, h = params.crop
        arr = arr[y : y + h, x : x + w]
    if params.flip:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)


def size_advice(sizes: list[tuple[int, int]], cfg: DataConfig) -> str | None:
    """A warning when --load-size resizes the images far from their own size (a 64 px
    or 1024 px dataset under the default 286/256), with the sizes that fit them; None
    when the sizes suit them (or no square resize happens)."""
    if cfg.resize != "square" or not sizes:
        return None
    sides = sorted(min(w, h) for w, h in sizes)
    side = sides[len(sides) // 2]  # the median image's shorter side
    if cfg.load_size <= 2 * side and side <= 2 * cfg.load_size:
        return None
    crop = 2 ** (min(max(side, 32), 1024).bit_length() - 1)  # unet_<crop> exists for 32..1024
    return (
        f"the images are about {side} px and --load-size {cfg.load_size} resizes them "
        f"{cfg.load_size / side:.1f}x before the {cfg.crop_size} crop; for {side} px data "
        f"use --load-size {round(crop * 286 / 256)} --crop-size {crop} --generator "
        f"unet_{crop}, or --preprocess crop to train on crops at full resolution"
    )
