"""Tiled inference: an image cut into overlapping tiles, each translated, blended back.

Tiles are `tile` x `tile` (a multiple of the generator's stride), placed every
`tile - overlap` pixels, the last one flush with the image's far edge; a side no longer
than `tile` is not cut. Each tile's output is weighted by a separable window that is 1
inside and rises as a raised cosine over the `overlap` pixels it shares with a neighbour
(no ramp at the image's own edges), divided by the windows' sum (rows and columns
apart: the 2-D weights are products, so they sum to 1 at every pixel), in float64.
Every pixel is covered with a positive weight, so a network that returns its input
returns the image exactly.

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
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, get_args

import torch
from torch import nn

from pix2pix.nets.inference import run_any_size

TileStats = Literal["tile", "image"]
TILE_STATS: tuple[TileStats, ...] = get_args(TileStats)


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


def default_overlap(tile: int, stride: int) -> int:
    """The pixels tiles share when none is given: an eighth of the tile, so seams are
    blended (at most tile - stride; 0 when the tile is one stride)."""
    return max(0, min(tile // 8, tile - stride))


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


# (y0, y1, x0, x1) -> the input window (B, C, y1 - y0, x1 - x0)
ReadRows = Callable[[int, int, int, int], torch.Tensor]
Block = tuple[int, int, int, int, torch.Tensor]  # (y0, y1, x0, x1, (B, C_out, rows, cols))


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
    bands = tiled_rows(run, window_of(x), (b, h, w), tile, overlap, batch, on_tile)
    return torch.cat([rows for _, _, rows in bands], dim=2)


def window_of(x: torch.Tensor) -> ReadRows:
    """`ReadRows` of an image in memory (B, C, H, W)."""
    return lambda y0, y1, x0, x1: x[:, :, y0:y1, x0:x1]


def _normalised(starts: list[int], size: int, length: int, overlap: int) -> dict[int, torch.Tensor]:
    """Each tile's 1-D window divided by the windows' sum over the side: the weights of a
    tile's output, summing to 1 at every pixel (the 2-D weights are their products)."""
    windows = {s: _window(s, size, length, overlap, torch.float64) for s in starts}
    total = torch.zeros(length, dtype=torch.float64)
    for s, win in windows.items():
        total[s : s + size] += win
    return {s: win / total[s : s + size] for s, win in windows.items()}


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
    finished output rows top to bottom: (first row, end row, (B, C_out, rows, W) float32),
    one band per row of tiles (`tiled_blocks`, assembled)."""
    band: torch.Tensor | None = None
    for y0, y1, x0, x1, block in tiled_blocks(run, read, shape, tile, overlap, batch, on_tile):
        if x0 == 0:
            band = block.new_empty(*block.shape[:3], shape[2])
        assert band is not None
        band[..., x0:x1] = block
        if x1 == shape[2]:
            yield y0, y1, band


def tiled_blocks(
    run: Callable[[torch.Tensor], torch.Tensor],
    read: ReadRows,
    shape: tuple[int, int, int],
    tile: int,
    overlap: int,
    batch: int = 1,
    on_tile: Callable[[int, int], None] | None = None,
) -> Iterator[Block]:
    """The blended output of `run_tiled` as finished blocks (y0, y1, x0, x1, (B, C_out,
    rows, cols) float32): a band of rows per row of tiles, left to right, top to bottom.

    Each tile reads only its window. A tile's output is weighted by the product of its
    normalised row and column windows, in float64; only what a later tile adds to is
    kept: the columns it shares with the next tile, and the rows it shares with the next
    row of tiles. Memory is those overlaps, not a band of the image.
    """
    b, h, w = shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    wys, wxs = _normalised(ys, th, h, overlap), _normalised(xs, tw, w, overlap)
    carry: torch.Tensor | None = None  # rows this row of tiles shares with the last one
    done = 0
    for i, y0 in enumerate(ys):
        y_next = ys[i + 1] if i + 1 < len(ys) else h  # rows above it are final here
        left: torch.Tensor | None = None  # columns this tile shares with the last one
        below: torch.Tensor | None = None  # rows it shares with the next row of tiles
        for first in range(0, len(xs), batch):
            group = xs[first : first + batch]
            crops = torch.cat([read(y0, y0 + th, x0, x0 + tw) for x0 in group])
            outs = run(crops).to("cpu", torch.float64).split(b)
            for j, (x0, out) in enumerate(zip(group, outs), start=first):
                x_next = xs[j + 1] if j + 1 < len(xs) else w
                part = out * (wys[y0][:, None] * wxs[x0][None, :])
                if left is not None:
                    part[..., : left.shape[-1]] += left
                if carry is not None:  # once per column: where the column is final
                    part[..., : carry.shape[2], : x_next - x0] += carry[..., x0:x_next]
                left = part[..., x_next - x0 :]
                final = part[..., : x_next - x0]
                if y_next < y0 + th:  # copied out: a view would keep every tile's output
                    if below is None:
                        below = out.new_empty(*out.shape[:2], y0 + th - y_next, w)
                    below[..., x0:x_next] = final[:, :, y_next - y0 :]
                yield y0, y_next, x0, x_next, final[:, :, : y_next - y0].float()
            done += len(group)
            if on_tile is not None:
                on_tile(done, len(ys) * len(xs))
        carry = below


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
    read, shape = x if isinstance(x, tuple) else (window_of(x), (x.shape[0], *x.shape[2:]))
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


def bytes_per_pixel(
    net: nn.Module,
    in_channels: int,
    stride: int,
    dtype: torch.dtype,
    extras: Callable[[torch.Tensor], Sequence[torch.Tensor]] = lambda probe: (),
) -> float:
    """An upper bound of the memory one input pixel costs in an inference forward pass:
    every module's output on a probe of 2 x stride squared (its coarsest map 2x2, which
    every normalisation accepts), summed, per pixel (as if all of them were alive at
    once), plus the input. `extras(probe)`: the inputs the network takes after the image
    (a latent code)."""
    total = 0

    def count(module: nn.Module, inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in net.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    side = 2 * stride
    probe = torch.zeros(
        1, in_channels, side, side, dtype=dtype, device=next(net.parameters()).device
    )
    was_training = net.training
    try:
        with torch.no_grad():
            net.eval()(probe, *extras(probe))
    finally:
        net.train(was_training)
        for hook in hooks:
            hook.remove()
    element = torch.finfo(dtype).bits // 8
    return (total + probe.numel()) * element / (side * side)


def needs_tiles(height: int, width: int, tile: int | None) -> bool:
    """Whether an image is cut into tiles: only when a tile is set and a side of the image
    is longer than it (an image that fits one tile runs whole). Decided here alone."""
    return tile is not None and max(height, width) > tile


def memory_tile(
    height: int, width: int, stride: int, per_pixel: float, budget: float
) -> int | None:
    """The tile that keeps one forward pass of a `height` x `width` image (padded to the
    stride, as the network sees it) within `budget` bytes at `per_pixel` bytes per
    input pixel (`bytes_per_pixel`); None when the image fits whole."""
    padded = -(-height // stride) * stride * (-(-width // stride) * stride)
    if padded * per_pixel <= budget:
        return None
    return auto_tile(budget, per_pixel, stride)


def auto_tile(budget_bytes: float, per_pixel: float, stride: int) -> int:
    """The largest tile (a multiple of `stride`) whose forward pass fits the budget."""
    side = int(math.sqrt(max(budget_bytes, 0.0) / per_pixel)) // stride * stride
    return max(stride, side)
