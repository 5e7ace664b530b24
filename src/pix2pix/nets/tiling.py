"""Tiled inference: an image cut into overlapping tiles, each translated, blended back.

Tiles are `tile` x `tile` (a multiple of the generator's stride), placed every
`tile - overlap` pixels, the last one flush with the image's far edge; a side no longer
than `tile` is not cut. Each tile's output is weighted by a separable window that is 1
inside and rises as a raised cosine over the `overlap` pixels it shares with a neighbour
(no ramp at the image's own edges), and the weighted outputs are divided by the summed
weights, in float64. Every pixel is covered with a positive weight, so a network that
returns its input returns the image exactly.

Normalisation: in eval mode (running statistics) tiles are independent and the result
approaches whole-image inference as the overlap grows. In the paper's mode (batch
statistics) each tile would be normalised by its own statistics, which differ from tile
to tile and show as seams; `stats="image"` first runs every tile once and pools what each
batch-norm layer sees into the whole image's mean and variance, then translates every
tile with those (`image_statistics`).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import nn

from pix2pix.nets.inference import run_any_size

TileStats = Literal["tile", "image"]
TILE_STATS: tuple[TileStats, ...] = ("tile", "image")


def check_tiling(tile: int, overlap: int, stride: int) -> None:
    """Refuse a tile that is not a positive multiple of `stride`, or an overlap outside
    0 <= overlap < tile (ValueError naming the value and the fix)."""
    if tile < stride or tile % stride:
        raise ValueError(
            f"tile {tile} is not a multiple of the generator's stride {stride}; use e.g. "
            f"{max(stride, tile // stride * stride)}"
        )
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap {overlap} must be >= 0 and smaller than the tile {tile}")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the tiles along one side: every tile - overlap, the last flush."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def _ramp(n: int, dtype: torch.dtype) -> torch.Tensor:
    """n raised-cosine values rising from near 0 to near 1, all > 0."""
    k = torch.arange(n, dtype=dtype)
    return 0.5 - 0.5 * torch.cos(math.pi * (k + 0.5) / n)


def _window(start: int, size: int, length: int, overlap: int, dtype: torch.dtype) -> torch.Tensor:
    """The 1-D weights of a tile covering [start, start + size) of a side of `length`."""
    w = torch.ones(size, dtype=dtype)
    ramp = min(overlap, size // 2)
    if ramp:
        if start > 0:
            w[:ramp] = _ramp(ramp, dtype)
        if start + size < length:
            w[size - ramp :] = _ramp(ramp, dtype).flip(0)
    return w


ReadRows = Callable[[int, int], torch.Tensor]  # (first row, end row) -> (B, C, rows, W)


def run_tiled(
    run: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    batch: int = 1,
    on_tile: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """`run` over overlapping tiles of x (B, C, H, W), blended: (B, C_out, H, W).

    `run` maps (N, C, h, w) to (N, C_out, h, w) for the tile sizes used (at most `tile`
    x `tile`; smaller only where the image is). `batch` tiles of a row go through `run`
    together (only where that cannot change the result: batch-independent
    normalisation). `on_tile(done, total)` is called after each batch.
    """
    b, _, h, w = x.shape
    bands = tiled_rows(run, lambda y0, y1: x[:, :, y0:y1], (b, h, w), tile, overlap, batch,
                       on_tile)  # fmt: skip
    return torch.cat([rows for _, _, rows in bands], dim=2)


def tiled_rows(
    run: Callable[[torch.Tensor], torch.Tensor],
    read: ReadRows,
    shape: tuple[int, int, int],
    tile: int,
    overlap: int,
    batch: int = 1,
    on_tile: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """`run_tiled` for an image given by `read` and `shape` (B, H, W), yielding the
    finished output rows top to bottom: (first row, end row, (B, C_out, rows, W) float32).

    Tiles are taken row by row; each row of tiles reads only the input rows it covers,
    and the float64 accumulators hold only the band of rows that row of tiles covers:
    rows above it are final and are yielded. Memory is a band, not the image.
    """
    b, h, w = shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    windows_x = {x0: _window(x0, tw, w, overlap, torch.float64) for x0 in xs}
    band = _Band(b, w)
    done = 0
    for y0 in ys:
        yield from band.finish_above(y0)  # no later tile reaches rows above this one
        rows = read(y0, y0 + th)
        wy = _window(y0, th, h, overlap, torch.float64)
        for first in range(0, len(xs), batch):
            group = xs[first : first + batch]
            crops = torch.cat([rows[:, :, :, x0 : x0 + tw] for x0 in group])
            outs = run(crops).to("cpu", torch.float64).split(b)
            for x0, out in zip(group, outs):
                win = wy[:, None] * windows_x[x0][None, :]
                band.add(out * win, win, y0, x0)
            done += len(group)
            if on_tile is not None:
                on_tile(done, len(ys) * len(xs))
    yield from band.finish_above(h)


class _Band:
    """The float64 sums of weighted outputs and of weights for the rows still open."""

    def __init__(self, batch: int, width: int) -> None:
        self.batch, self.width = batch, width
        self.lo = 0  # the first open row
        self.acc: torch.Tensor | None = None  # (B, C, rows, W)
        self.weight = torch.zeros(1, 1, 0, width, dtype=torch.float64)

    def add(self, weighted: torch.Tensor, win: torch.Tensor, y0: int, x0: int) -> None:
        rows, cols = weighted.shape[-2:]
        if self.acc is None:
            c = weighted.shape[1]
            self.acc = torch.zeros(self.batch, c, 0, self.width, dtype=torch.float64)
        grow = y0 + rows - self.lo - self.acc.shape[2]
        if grow > 0:
            self.acc = torch.cat([self.acc, self.acc.new_zeros(*self.acc.shape[:2], grow,
                                                               self.width)], 2)  # fmt: skip
            self.weight = torch.cat([self.weight, self.weight.new_zeros(1, 1, grow, self.width)], 2)
        r = slice(y0 - self.lo, y0 - self.lo + rows)
        self.acc[:, :, r, x0 : x0 + cols] += weighted
        self.weight[:, :, r, x0 : x0 + cols] += win

    def finish_above(self, row: int) -> Iterator[tuple[int, int, torch.Tensor]]:
        """The rows above `row` (all of their tiles are in), blended, as float32."""
        n = row - self.lo
        if self.acc is None or n <= 0:
            return
        done = (self.acc[:, :, :n] / self.weight[:, :, :n]).float()
        self.acc, self.weight = self.acc[:, :, n:].clone(), self.weight[:, :, n:].clone()
        lo, self.lo = self.lo, row
        yield lo, row, done


@contextlib.contextmanager
def image_statistics(
    net: nn.Module,
    x: torch.Tensor | tuple[ReadRows, tuple[int, int, int]],
    tile: int,
    overlap: int,
    stride: int,
) -> Iterator[None]:
    """Normalise every tile with the whole image's batch statistics (the two-pass mode).

    Pass 1 runs `net` over every tile as it is (each batch-norm layer on its tile's own
    statistics) and pools what each layer sees: per-channel sums and sums of squares over
    all tiles give the image's mean and (biased) variance. For the block, those layers then
    normalise with the pooled statistics (eval-style) while dropout stays as it is. Their
    running statistics and modes are restored afterwards. With one tile covering the image
    the statistics are exactly the whole image's. `x` is the image, or (read, shape) as
    for `tiled_rows`.
    """
    read, shape = (x if isinstance(x, tuple) else
                   (lambda y0, y1: x[:, :, y0:y1], (x.shape[0], *x.shape[2:])))  # fmt: skip
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    sums: dict[nn.Module, list[torch.Tensor]] = {}

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        z = inputs[0].double()
        n = torch.tensor(z.numel() / z.shape[1], dtype=torch.float64)
        part = [z.sum((0, 2, 3)), (z * z).sum((0, 2, 3)), n]
        sums[module] = [a + b for a, b in zip(sums[module], part)] if module in sums else part

    hooks = [m.register_forward_pre_hook(record) for m in norms]
    try:
        with torch.no_grad():
            for _ in tiled_rows(lambda t: run_any_size(net, t, stride), read, shape, tile, overlap):
                pass
    finally:
        for hook in hooks:
            hook.remove()
    saved = [(m.training, m.running_mean, m.running_var) for m in norms]
    param = next(net.parameters())
    try:
        for m in norms:
            total, squares, n = sums[m]
            mean = total / n
            var = (squares / n - mean * mean).clamp_min(0.0)
            dtype = m.running_mean.dtype if m.running_mean is not None else param.dtype
            m.running_mean, m.running_var = (
                mean.to(param.device, dtype),
                var.to(param.device, dtype),
            )
            m.training = False
        yield
    finally:
        for m, (training, mean, var) in zip(norms, saved):
            m.training, m.running_mean, m.running_var = training, mean, var


def bytes_per_pixel(net: nn.Module, in_channels: int, stride: int, dtype: torch.dtype) -> float:
    """An upper bound of the memory one input pixel costs in an inference forward pass:
    every module's output on a stride x stride probe, summed, per pixel (as if all of
    them were alive at once), plus the input."""
    total = 0

    def count(module: nn.Module, inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in net.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    probe = torch.zeros(1, in_channels, stride, stride, dtype=dtype,
                        device=next(net.parameters()).device)  # fmt: skip
    was_training = net.training
    try:
        with torch.no_grad():
            net.eval()(probe)
    finally:
        net.train(was_training)
        for hook in hooks:
            hook.remove()
    element = torch.finfo(dtype).bits // 8
    return (total + probe.numel()) * element / (stride * stride)


def auto_tile(budget_bytes: float, per_pixel: float, stride: int) -> int:
    """The largest tile (a multiple of `stride`) whose forward pass fits the budget."""
    side = int(math.sqrt(max(budget_bytes, 0.0) / per_pixel)) // stride * stride
    return max(stride, side)


def available_memory(device: torch.device) -> int:
    """Bytes free for a forward pass: CUDA's free memory, or the OS's available RAM."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 2 << 30
