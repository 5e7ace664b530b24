"""Many outputs for one input, for a model with a latent code (bicyclegan): the codes a
job translates with, the files they go to, and the code of a reference image.

Every input of a job takes the same K codes (`Pix2Pix.sample_z(K, z_seed)`: drawn on
the CPU from their own generator), so sample k of one input and sample k of another
share a code, and a seed gives the same samples on every path. `--style IMAGE` takes
the encoder's mean code of that image instead (example-guided output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pix2pix.checkpoint import load_weights, module_file
from pix2pix.config import check_seed
from pix2pix.data.files.encoding import encode_input
from pix2pix.data.files.images import read_image
from pix2pix.errors import UserError, setting


def encode_images(model: Any, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar), each (B, nz), of output-side images y (B, C_out, H, W) in [-1, 1] by
    the method's encoder, loaded from the model's checkpoint on first use."""
    if getattr(model, "_encoder", None) is None:
        net = model.method.encoder_module(model.config)
        file = module_file(model.path, "encoder") if model.path is not None else None
        if net is None or file is None or not file.is_file():
            raise UserError(
                f"{model.path}: has no encoder (a {model.config.model.method} model, or a "
                "generator imported without --encoder); give a code instead"
            )
        model._encoder = load_weights(net, file).to(model.device).eval()
    with torch.no_grad():
        mu, logvar = model._encoder(y.to(model.device, torch.float32))
    return mu.float().cpu(), logvar.float().cpu()


def sample_codes(model: Any, n: int, seed: int | None) -> torch.Tensor:
    """`n` codes (n, nz) ~ N(0, I) for `model`'s latent input z, drawn on the CPU from a
    generator of their own: a seed gives the same codes on every device and path."""
    spec = next((s for s in model.extra_inputs if s.name == "z"), None)
    if spec is None:
        raise ValueError(f"this {model.method.__name__} model takes no latent code z")
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(n, spec.channels, generator=gen)


def job_codes(model: Any, samples: int, z_seed: int, style: Path | None) -> torch.Tensor | None:
    """The (K, nz) codes every input is translated with; None for a model without a code
    (which then takes neither --samples above 1 nor --style)."""
    if samples < 1:
        raise UserError(f"{setting('--samples')} {samples} is out of range; use a value >= 1")
    check_seed(z_seed, setting("--z-seed"))
    if not any(s.name == "z" for s in model.extra_inputs):
        if samples > 1 or style is not None:
            raise UserError(
                f"{setting('--samples')} and {setting('--style')} need a model with a latent "
                f"code (--method bicyclegan); this is a {model.config.model.method} model"
            )
        return None
    if style is None:
        return model.sample_z(samples, z_seed)
    if samples > 1:
        raise UserError(f"{setting('--style')} gives one code; drop {setting('--samples')}")
    arr = read_image(Path(style))
    if arr.shape[2] != model.out_channels:
        raise UserError(
            f"{style}: has {arr.shape[2]} channel(s); a {setting('--style')} image is an "
            f"output-side image, with the model's {model.out_channels}"
        )
    mu, _ = encode_images(model, encode_input(arr, "rgb")[None])
    return mu


def sample_path(target: Path, k: int, samples: int) -> Path:
    """Where sample `k` of `samples` of an input goes: `<stem>_kk<suffix>` (one: `target`)."""
    return target if samples == 1 else target.with_name(f"{target.stem}_{k:02d}{target.suffix}")


def per_sample(codes: torch.Tensor | None, batch: int) -> list[dict[str, torch.Tensor] | None]:
    """The extra inputs of each sample of a batch: code k for every image (none: one pass)."""
    if codes is None:
        return [None]
    return [{"z": codes[k : k + 1].expand(batch, -1)} for k in range(len(codes))]
