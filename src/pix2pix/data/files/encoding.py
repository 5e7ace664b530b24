"""Image arrays <-> what the networks see, for each `color_space`.

- ``rgb``: every channel as it is, normalised to [-1, 1] from its depth (`to_tensor`).
- ``lab``: colorization as in the paper: the input is the CIELAB L* of the target photo
  (or of any image given to `translate`), the output its a*b*; an output is shown and
  written as the RGB image of (input L*, predicted a*b*).

Training, translation and evaluation all go through these functions, so the three agree
on what an output image is.
"""

from __future__ import annotations

import numpy as np
import torch

from pix2pix.config import DataConfig
from pix2pix.data.files.colour import decode_lab, encode_lab
from pix2pix.data.files.images import from_tensor, to_tensor, with_channels

LAB_CHANNELS = (1, 2)  # (input L*, output a*b*)


def encode_pair(
    inp: np.ndarray | None, target: np.ndarray, color_space: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) arrays (H, W, C) -> model (input, target) tensors in [-1, 1].

    In ``lab`` mode only the target (a colour photo) is used: (L*, a*b*) of it.
    """
    if color_space == "lab":
        return encode_lab(to_tensor(with_channels(target, 3)))
    assert inp is not None
    return to_tensor(inp), to_tensor(target)


def encode_input(arr: np.ndarray, color_space: str) -> torch.Tensor:
    """An input image (H, W, C) -> the model input (C_in, H, W) in [-1, 1]."""
    if color_space == "lab":
        return encode_lab(to_tensor(with_channels(arr, 3)))[0]  # grayscale: (g, g, g)
    return to_tensor(arr)


def decode_output(y: torch.Tensor, x: torch.Tensor, color_space: str) -> torch.Tensor:
    """Model output (..., C_out, H, W) for input x -> the image it stands for, in [-1, 1].

    ``lab``: (..., 3, H, W) RGB of (L* of x, a*b* of y), out-of-gamut colours clipped.
    """
    if color_space == "lab":
        return decode_lab(x.to(y.device, y.dtype), y)
    return y


def output_array(y: torch.Tensor, x: torch.Tensor, cfg: DataConfig) -> np.ndarray:
    """One model output (C_out, H, W) for input x -> the (H, W, C) array to write."""
    depth = cfg.written_depth
    return from_tensor(decode_output(y, x, cfg.color_space), depth)


def image_channels(out_channels: int, color_space: str) -> int:
    """Channels of the written output image (3 for lab: RGB)."""
    return 3 if color_space == "lab" else out_channels


def display_batch(
    color_space: str, real_a: torch.Tensor, fake: torch.Tensor, real_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input, output, target) batches as images for a sample grid (lab: RGB outputs)."""
    if color_space != "lab":
        return real_a, fake, real_b
    x = real_a.detach().float().cpu()
    return x, decode_lab(x, fake.detach().float().cpu()), decode_lab(x, real_b.detach().cpu())
