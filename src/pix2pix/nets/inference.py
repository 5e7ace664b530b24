"""Running a generator for inference: the paper's or eval mode, and any input size.

`inference_mode` sets the mode for a block and restores the module's own afterwards;
`run_any_size` reflect-pads to a multiple of the generator's stride and crops back.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Box = tuple[int, int, int, int]  # top, left, height, width of the original inside the padded


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, Box]:
    """Pad (B, C, H, W) on all sides, centred, so H and W become multiples of `multiple`.

    Reflection needs the pad to be smaller than the side, so large pads (a small image
    under a deep U-Net) reflect repeatedly; a side of one pixel is replicated.
    """
    h, w = x.shape[-2:]
    big_h, big_w = math.ceil(h / multiple) * multiple, math.ceil(w / multiple) * multiple
    top, left = (big_h - h) // 2, (big_w - w) // 2
    remaining = [left, big_w - w - left, top, big_h - h - top]  # F.pad order: l, r, t, b
    while any(remaining):
        cur_h, cur_w = x.shape[-2:]
        if min(cur_h, cur_w) < 2:
            x = F.pad(x, remaining, mode="replicate")
            break
        step = [min(p, limit - 1) for p, limit in zip(remaining, (cur_w, cur_w, cur_h, cur_h))]
        x = F.pad(x, step, mode="reflect")
        remaining = [p - s for p, s in zip(remaining, step)]
    return x, (top, left, h, w)


def crop_box(x: torch.Tensor, box: Box) -> torch.Tensor:
    """Undo `pad_to_multiple`: (B, C, H', W') -> (B, C, H, W)."""
    top, left, h, w = box
    return x[..., top : top + h, left : left + w]


def run_any_size(
    net: torch.nn.Module, x: torch.Tensor, multiple: int, extras: Sequence[torch.Tensor] = ()
) -> torch.Tensor:
    """net(x, *extras) for any H, W: pads when needed and crops the output back to x's
    size. Spatial extras ((B, C, H, W) like x: a label map) are padded as x is; the others
    (a latent code (B, nz)) are passed as they are."""
    h, w = x.shape[-2:]
    if h % multiple == 0 and w % multiple == 0:
        return net(x, *extras)
    padded, box = pad_to_multiple(x, multiple)
    extras = [pad_to_multiple(e, multiple)[0] if e.ndim == 4 else e for e in extras]
    return crop_box(net(padded, *extras), box)


@contextlib.contextmanager
def inference_mode(net: nn.Module, eval_mode: bool) -> Iterator[None]:
    """Run `net` in eval mode, or in the paper's mode without touching its buffers.

    Paper mode puts modules in training mode (dropout on, batch norm on batch statistics)
    but stops batch norm from updating its running averages, so translating never
    changes the model. Afterwards every module is back in the mode it was in, so a
    caller's module (a trainer's generator) is never left in another one.
    """
    modes = [(m, m.training) for m in net.modules()]
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    tracking = [m.track_running_stats for m in norms]
    net.train(not eval_mode)
    if not eval_mode:
        for m in norms:
            m.track_running_stats = False
    try:
        yield
    finally:
        for m, flag in zip(norms, tracking):
            m.track_running_stats = flag
        for m, training in modes:
            m.training = training
