"""sRGB <-> CIELAB (D65), and the Lab encoding the colorization models train on.

sRGB (IEC 61966-2-1): companded values in [0, 1] are linearised by the piecewise
gamma curve (linear below 0.04045, else ((c + 0.055) / 1.055) ** 2.4), then taken to
CIE XYZ by the standard D65 matrix. CIELAB (CIE 15) is computed relative to the D65
white point, taken as the matrix's image of RGB white so that white is exactly
L* = 100, a* = b* = 0.

Tensors have channels on dim -3: (..., 3, H, W). L* is in [0, 100]; a*, b* of sRGB
colours lie within about [-87, 99] and [-108, 95].

The models of `color_space: lab` (the paper's colorization setting) see L* and predict
a*b*, scaled to [-1, 1]: L* / 50 - 1 and a*b* / 110.
"""

from __future__ import annotations

import torch

# sRGB primaries with the D65 white, linear RGB -> XYZ (IEC 61966-2-1 / Lindbloom)
RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
AB_SCALE = 110.0  # a*b* / AB_SCALE lies in [-1, 1] for every sRGB colour
_EPS = (6 / 29) ** 3  # CIE's junction of the cube root and the linear segment
_KAPPA = 3 * (6 / 29) ** 2


def _matrix(x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    m = torch.tensor(RGB_TO_XYZ, dtype=torch.float64)
    m = torch.linalg.inv(m) if inverse else m
    return m.to(x.device, x.dtype if x.is_floating_point() else torch.float32)


def _apply(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multiply the channel vector (dim -3) of `x` by the 3x3 matrix `m`."""
    return torch.einsum("ij,...jhw->...ihw", m, x)


def srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    """Companded sRGB in [0, 1] -> linear light in [0, 1]."""
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: torch.Tensor) -> torch.Tensor:
    """Linear light in [0, 1] -> companded sRGB in [0, 1]."""
    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c.clamp(min=0) ** (1 / 2.4) - 0.055)


def _white(x: torch.Tensor) -> torch.Tensor:
    return _matrix(x).sum(dim=1).view(3, 1, 1)  # XYZ of RGB (1, 1, 1): the D65 white


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 3, H, W) L* a* b*."""
    xyz = _apply(_matrix(rgb), srgb_to_linear(rgb)) / _white(rgb)
    f = torch.where(xyz > _EPS, xyz.clamp(min=_EPS) ** (1 / 3), xyz / _KAPPA + 4 / 29)
    fx, fy, fz = f.unbind(dim=-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """(..., 3, H, W) L* a* b* -> sRGB; colours outside the gamut are clipped to [0, 1]."""
    l, a, b = lab.unbind(dim=-3)  # noqa: E741
    fy = (l + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=-3)
    xyz = torch.where(f > 6 / 29, f**3, _KAPPA * (f - 4 / 29)) * _white(lab)
    rgb = linear_to_srgb(_apply(_matrix(lab, inverse=True), xyz))
    return rgb.clamp(0, 1) if clip else rgb


def luminance_gray(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> (..., 1, H, W) gray of the same luminance (CIE Y).

    The gray pixel (g, g, g) has the same L* as the colour it came from, so a model
    trained on L* sees the same values in these grayscale images.
    """
    y = _apply(_matrix(rgb), srgb_to_linear(rgb))[..., 1:2, :, :]
    return linear_to_srgb(y.clamp(0, 1))


def encode_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 3, H, W) RGB in [-1, 1] -> model input L (..., 1, H, W) and target ab (..., 2, H, W),
    both in [-1, 1]."""
    lab = rgb_to_lab((rgb + 1) * 0.5)
    return lab[..., :1, :, :] / 50 - 1, lab[..., 1:, :, :] / AB_SCALE


def decode_lab(l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:  # noqa: E741
    """Model L (..., 1, H, W) and ab (..., 2, H, W) in [-1, 1] -> RGB (..., 3, H, W) in [-1, 1]."""
    lab = torch.cat([(l + 1) * 50, ab * AB_SCALE], dim=-3)
    return lab_to_rgb(lab) * 2 - 1
