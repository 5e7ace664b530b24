"""Edge maps from photos (edges -> photo datasets like edges2shoes).

Two detectors:
- `canny`, through OpenCV (optional: `pip install 'pix2pix[opencv]'`, imported only when
  edges are made);
- `hed`, the holistically-nested edge detector the paper's edges2* datasets were made
  with (`pix2pix.nets.hed`), when its weights are available locally (`load_hed`).
Edges are drawn black (0) on white (255), as in the published edges2* datasets.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from pix2pix.data.files import formats
from pix2pix.data.files.images import luma, to_depth
from pix2pix.data.tools.derive import OutLayout, derive_pairs
from pix2pix.errors import UserError, setting
from pix2pix.nets.hed import HED

EdgeMethod = Literal["canny", "hed"]


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


# The layout of the widely shared PyTorch conversion of the original Caffe HED weights
# ("moduleVggOne.0.weight", "netScoreTwo.bias", "moduleCombine.0.weight", ...).
_ORDINALS = {"One": 0, "Two": 1, "Thr": 2, "Fou": 3, "Fiv": 4}
_CONVERTED = re.compile(r"^(?:module|net)(Vgg|Score|Combine)(One|Two|Thr|Fou|Fiv)?\.(.+)$")


def _our_key(key: str) -> str:
    """A state-dict key of either layout -> this package's `HED` key."""
    key = key.removeprefix("module.")  # saved from a DataParallel wrapper
    found = _CONVERTED.match(key)
    if not found:
        return key
    part, ordinal, rest = found.groups()
    if part == "Combine":
        return f"fuse.{rest.removeprefix('0.')}"
    index = _ORDINALS.get(ordinal or "", -1)
    return f"stages.{index}.{rest}" if part == "Vgg" else f"sides.{index}.{rest}"


def load_hed(path: str | Path) -> HED:
    """A `HED` in eval mode with the weights of `path`: a .safetensors file, or a .pt/.pth
    state dict (read with `weights_only=True`), in this package's key layout or in the
    layout of the common PyTorch conversion of the original weights."""
    path = Path(path)
    fix = f"pass {setting('--hed-weights')} FILE, a .safetensors or .pt state dict of HED"
    if not path.is_file():
        raise UserError(f"{path}: HED weights not found; {fix}")
    try:
        if path.suffix == ".safetensors":
            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, RuntimeError, OSError, ValueError) as exc:
        raise UserError(f"{path}: not readable as HED weights ({exc}); {fix}") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: holds a {type(state).__name__}, not a state dict; {fix}")
    state = {_our_key(str(k)): v for k, v in state.items()}
    model = HED()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unknown = sorted(set(state) - set(expected))
    if missing or unknown:
        names = ", ".join((missing or unknown)[:3])
        what = "lacks" if missing else "has unknown"
        raise UserError(f"{path}: {what} HED weights ({names}, ...); {fix}")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or value.shape != expected[key].shape:
            shape, needed = tuple(getattr(value, "shape", ())), tuple(expected[key].shape)
            raise UserError(f"{path}: {key} has shape {shape}, HED needs {needed}")
    model.load_state_dict(state)
    return model.eval()


@torch.inference_mode()
def hed(photo: np.ndarray, model: HED, threshold: float = 0.5) -> np.ndarray:
    """(H, W, 1 or 3) image of any depth -> (H, W, 1) uint8 edges, 0 on edges.

    `threshold` in (0, 1] marks pixels of edge probability >= threshold as edges (0) and
    the rest 255; `threshold` 0 keeps the soft map, 255 * (1 - probability).
    """
    if photo.shape[2] not in (1, 3):
        raise UserError(f"edges are made from grayscale or colour images, not {photo.shape[2]}")
    rgb = torch.from_numpy(to_depth(photo, "float32")).permute(2, 0, 1).expand(3, -1, -1)
    prob = model(rgb[None])[0, 0].numpy()  # (H, W) in [0, 1]
    if threshold > 0:
        return np.where(prob >= threshold, 0, 255).astype(np.uint8)[:, :, None]
    return np.round(255.0 * (1.0 - prob)).astype(np.uint8)[:, :, None]


def edges(
    src: str | Path,
    out: str | Path,
    *,
    method: EdgeMethod = "canny",
    low: float = 100.0,
    high: float = 200.0,
    hed_weights: str | Path | None = None,
    threshold: float = 0.5,
    layout: OutLayout = "paired",
    workers: int | None = None,
) -> list[Path]:
    """Photos -> (edge map, photo) pairs, by Canny (`low`, `high`) or by HED
    (`hed_weights`, `threshold`)."""
    # Everything is checked before anything is written.
    if method == "canny":
        if not 0 <= low <= high:
            raise UserError(
                f"{setting('--low')} {low} and {setting('--high')} {high}: use 0 <= low <= high"
            )
        formats.require_opencv("pix2pix data edges", extra="edges")
        return derive_pairs(
            src, out, lambda photo, _: canny(photo, low, high), layout=layout, workers=workers
        )
    if method == "hed":
        if not 0 <= threshold <= 1:
            raise UserError(
                f"{setting('--threshold')} {threshold} is out of range; use 0 (soft) to 1"
            )
        if hed_weights is None:
            raise UserError(
                f"{setting('--method')} hed needs {setting('--hed-weights')} FILE (pix2pix ships "
                "no HED weights)"
            )
        model = load_hed(hed_weights)  # one network, shared read-only by the worker threads
        return derive_pairs(
            src, out, lambda photo, _: hed(photo, model, threshold), layout=layout, workers=workers
        )
    valid = ", ".join(get_args(EdgeMethod))
    raise UserError(f"{setting('--method')} {method!r} is not valid; choose one of: {valid}")
