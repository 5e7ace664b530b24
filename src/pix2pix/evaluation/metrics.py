"""Per-image reconstruction metrics: L1, MSE, PSNR, SSIM, MS-SSIM (pure torch).

Inputs are (B, C, H, W) float tensors in [-1, 1], the model's range. Every metric maps
them to [0, 1] first, so L1 and MSE are on that scale and PSNR and SSIM use a data range
of 1. Each function returns one value per image, shape (B,), float64; colour channels
are averaged.

SSIM follows Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
K2 = 0.03, computed over the 'valid' region (no padding), averaged over the map. Images
smaller than 11 pixels use the largest odd window that fits. MS-SSIM (Wang et al. 2003)
uses the standard five scales and weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
halving the image with 2x2 average pooling between scales; an image too small for five
scales (the coarsest must still hold the window: a side of 176 pixels for five) uses
as many scales as fit, with the first weights renormalised to sum to 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
PSNR_CAP = 100.0  # dB, for identical images (MSE 0)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], float64 for stable sums."""
    return (x.double() + 1.0) / 2.0


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(
            f"expected two (B, C, H, W) tensors of one shape, got {x.shape}, {y.shape}"
        )


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image on the [0, 1] scale: (B, C, H, W) x2 -> (B,)."""
    _check(x, y)
    return (_unit(x) - _unit(y)).abs().flatten(1).mean(1)


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image on the [0, 1] scale: (B, C, H, W) x2 -> (B,)."""
    _check(x, y)
    return (_unit(x) - _unit(y)).square().flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """10 log10(1 / MSE) per image, data range 1; identical images give PSNR_CAP dB."""
    error = mse(x, y)
    return (10.0 * torch.log10(1.0 / error.clamp_min(1e-300))).clamp_max(PSNR_CAP)


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """The normalised 1-D Gaussian (size,), float64."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _band(n: int, window: torch.Tensor) -> torch.Tensor:
    """(n, n - k + 1) matrix M with (v @ M)[j] = sum_i window[i] v[j + i]: 'valid' filtering."""
    k = len(window)
    m = torch.zeros(n, n - k + 1, dtype=window.dtype)
    for i in range(k):
        m.diagonal(-i).fill_(window[i].item())
    return m


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of (B, C, H, W), each channel on its own.

    Written as two matrix products (fast in float64, unlike float64 convolutions).
    """
    h, w = x.shape[-2:]
    rows = _band(h, window).to(x)  # (H, H')
    cols = _band(w, window).to(x)  # (W, W')
    return rows.T @ x @ cols  # (B, C, H', W')


def _ssim_parts(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(SSIM, contrast-structure) per image for [0, 1] float64 tensors: two (B,) tensors."""
    side = min(x.shape[-2:])
    size = min(WINDOW, side if side % 2 else side - 1)
    window = gaussian_window(size)
    c1, c2 = K1**2, K2**2
    mu_x, mu_y = _blur(x, window), _blur(y, window)
    var_x = _blur(x * x, window) - mu_x**2
    var_y = _blur(y * y, window) - mu_y**2
    cov = _blur(x * y, window) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.flatten(1).mean(1), cs_map.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image, in [-1, 1] (1: identical): (B, C, H, W) x2 -> (B,)."""
    _check(x, y)
    return _ssim_parts(_unit(x), _unit(y))[0]


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales fit: the coarsest image must still hold the 11-pixel window."""
    side, scales = min(height, width), 1
    while scales < len(MS_SSIM_WEIGHTS) and side // 2**scales >= WINDOW:
        scales += 1
    return scales


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM per image, in [0, 1]: (B, C, H, W) x2 -> (B,).

    Negative contrast-structure terms are clipped to 0 so the weighted product is defined.
    """
    _check(x, y)
    scales = ms_ssim_scales(*x.shape[-2:])
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float64)
    weights = weights / weights.sum()
    x, y = _unit(x), _unit(y)
    result = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
    for i in range(scales):
        full, cs = _ssim_parts(x, y)
        term = full if i == scales - 1 else cs
        result = result * term.clamp_min(0.0) ** weights[i].item()
        if i < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return result


METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": l1,
    "mse": mse,
    "psnr": psnr,
    "ssim": ssim,
    "ms_ssim": ms_ssim,
}
# True where a higher value is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "l1": False,
    "mse": False,
    "psnr": True,
    "ssim": True,
    "ms_ssim": True,
    "fid": False,
    "kid": False,
}


def image_metrics(
    output: torch.Tensor, target: torch.Tensor, names: tuple[str, ...] = tuple(METRICS)
) -> dict[str, torch.Tensor]:
    """{metric name: (B,) values} for a batch of outputs against their targets."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from: {', '.join(METRICS)}")
    return {name: METRICS[name](output, target).cpu() for name in names}


# Levels above zero of each output depth (float32 files keep the values as they are).
LEVELS = {"uint8": 255.0, "uint16": 65535.0}


def quantize(x: torch.Tensor, depth: str = "uint8") -> torch.Tensor:
    """Round [-1, 1] values to the levels an image file of `depth` keeps (as saved to disk):
    256 for uint8, 65536 for uint16; float32 is only clamped to [-1, 1]."""
    if depth == "float32":
        return x.float().clamp(-1, 1)
    if depth not in LEVELS:
        raise ValueError(f"depth {depth!r} is not valid; choose one of: uint8, uint16, float32")
    half = LEVELS[depth] / 2
    return ((x.float().clamp(-1, 1) + 1.0) * half).round() / half - 1.0
