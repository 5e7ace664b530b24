"""ComfyUI nodes for pix2pix checkpoints: a loader and a translator.

ComfyUI's conventions: an IMAGE is a float tensor (B, H, W, C) in [0, 1], RGB; a node is a
class with INPUT_TYPES, RETURN_TYPES, FUNCTION and CATEGORY. This module imports only
torch and pix2pix, never ComfyUI, so it loads (and is tested) without ComfyUI installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import pix2pix
from pix2pix.data.files.encoding import decode_output, encode_input
from pix2pix.data.files.images import with_channels

CATEGORY = "image/pix2pix"


class Pix2PixLoader:
    """A checkpoint folder, run folder (its latest/) or hf:OWNER/NAME -> PIX2PIX_MODEL."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # ComfyUI's name
        return {
            "required": {
                "checkpoint": ("STRING", {"default": "", "multiline": False}),
                "weights": (["auto", "ema", "raw"],),
                "device": (["auto", "cpu", "cuda"],),
            }
        }

    RETURN_TYPES = ("PIX2PIX_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, checkpoint: str, weights: str = "auto", device: str = "auto") -> tuple[Any]:
        if not checkpoint.strip():
            raise ValueError("checkpoint: give a checkpoint folder, a run folder or hf:OWNER/NAME")
        return (pix2pix.load(checkpoint.strip(), device, weights=weights),)


def to_model_input(image: torch.Tensor, model: Any) -> torch.Tensor:
    """A ComfyUI IMAGE (B, H, W, C) in [0, 1] -> the model's input (B, C_in, H, W) in [-1, 1]
    (RGB given to a 1-channel model: its luminance; 1 channel to a 3-channel model: gray)."""
    arrays = image.detach().float().cpu().clamp(0, 1).numpy()
    xs = []
    for i, arr in enumerate(arrays):
        arr = with_channels(np.ascontiguousarray(arr), model.read_channels, f"image {i}")
        xs.append(encode_input(arr, model.color_space))
    return torch.stack(xs)


def to_image(y: torch.Tensor, x: torch.Tensor, model: Any) -> torch.Tensor:
    """The model's output (B, C_out, H, W) in [-1, 1] -> a ComfyUI IMAGE (B, H, W, 3)."""
    y = decode_output(y, x, model.color_space)
    y = y.repeat(1, 3, 1, 1) if y.shape[1] == 1 else y[:, :3]
    return ((y.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).contiguous()


class Pix2PixTranslate:
    """PIX2PIX_MODEL + IMAGE -> IMAGE: every image translated at its own size, in tiles of
    `tile` pixels (0: whole) blended over an eighth of a tile; `samples` > 1 (models with a
    latent code: BicycleGAN, OASIS) gives that many outputs per image, drawn from `seed`."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # ComfyUI's name
        return {
            "required": {
                "model": ("PIX2PIX_MODEL",),
                "image": ("IMAGE",),
                "tile": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 64}),
                "samples": ("INT", {"default": 1, "min": 1, "max": 64}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1}),
                "mode": (["paper", "eval"],),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "translate"
    CATEGORY = CATEGORY

    def translate(
        self,
        model: Any,
        image: torch.Tensor,
        tile: int = 0,
        samples: int = 1,
        seed: int = 0,
        mode: str = "paper",
    ) -> tuple[torch.Tensor]:
        from pix2pix.translate.tiling import default_overlap

        x = to_model_input(image, model)
        has_code = any(s.name == "z" for s in model.extra_inputs)
        if samples > 1 and not has_code:
            raise ValueError(
                f"samples {samples}: this {model.config.model.method} model has no latent "
                "code; use samples 1 (or a BicycleGAN / OASIS model)"
            )
        tiling: dict[str, Any] = {}
        if tile:
            tile = max(model.stride, tile // model.stride * model.stride)
            tiling = {"tile": tile, "overlap": default_overlap(tile, model.stride)}
        outs = []
        codes = model.sample_z(samples, seed) if has_code else None
        for k in range(samples):
            extra = None if codes is None else {"z": codes[k : k + 1].expand(len(x), -1)}
            y = model.translate_tensor(
                x, eval_mode=mode == "eval", seed=seed, extra=extra, **tiling
            )
            outs.append(to_image(y, x, model))
        # sample k of image i at k * B + i: a batch ComfyUI previews and saves as it is
        return (torch.cat(outs),)


NODE_CLASS_MAPPINGS = {"Pix2PixLoader": Pix2PixLoader, "Pix2PixTranslate": Pix2PixTranslate}
NODE_DISPLAY_NAME_MAPPINGS = {
    "Pix2PixLoader": "pix2pix: load checkpoint",
    "Pix2PixTranslate": "pix2pix: translate",
}
