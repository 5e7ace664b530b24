"""Diversity of many outputs for one input (a model with a latent code: bicyclegan).

For each input translated with K codes, the mean distance over the K(K-1)/2 pairs of its
outputs, averaged over the inputs:
- in pixels: mean |a - b| of the outputs as their files hold them, on [0, 1];
- in deep features: the L2 distance of their Inception-v3 pool features (the 2048 values
  FID uses, from the same weights). LPIPS, the published measure, needs AlexNet/VGG
  weights that cannot be had offline, so this figure is not comparable with published
  LPIPS diversity: compare models with each other under this one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from pix2pix.config import EvalConfig, ref
from pix2pix.errors import UserError

FEATURES = "Inception-v3 pool features (the FID network), L2"


def sample_codes(model: Any, c: EvalConfig) -> torch.Tensor | None:
    """The (K, nz) codes every pair is translated with (`translate --samples K --z-seed
    S` draws the same); None for a model without a code, whose K samples differ by their
    dropout noise alone (the paper's mode; eval mode has none)."""
    if not any(s.name == "z" for s in model.extra_inputs):
        if c.samples > 1 and c.eval_mode:
            raise UserError(
                f"{ref('samples')} {c.samples} with {ref('eval_mode')}: a "
                f"{model.config.model.method} model without a code gives one answer in eval "
                "mode; sample in the paper's mode (dropout) or use a model with a code"
            )
        return None
    return model.sample_z(c.samples, c.z_seed)


def pairwise_l1(samples: Sequence[torch.Tensor]) -> float:
    """Mean |a - b| over every pair of outputs (each (1, C, H, W) in [-1, 1]), on [0, 1]."""
    pairs = list(itertools.combinations(samples, 2))
    return float(np.mean([((a - b).abs().mean() / 2).item() for a, b in pairs]))


def pairwise_features(features: np.ndarray) -> float:
    """Mean L2 distance over every pair of rows of `features` (K, D)."""
    pairs = list(itertools.combinations(range(len(features)), 2))
    return float(np.mean([np.linalg.norm(features[i] - features[j]) for i, j in pairs]))


class Diversity:
    """Per-input pairwise distances of K outputs, summarised for metrics.json."""

    def __init__(self, k: int, extractor: Callable[[torch.Tensor], np.ndarray] | None) -> None:
        self.k = k
        self.extractor = extractor
        self.l1: list[float] = []
        self.deep: list[float] = []

    def add(self, samples: Sequence[torch.Tensor]) -> None:
        self.l1.append(pairwise_l1(samples))
        if self.extractor is not None:
            self.deep.append(pairwise_features(self.extractor(torch.cat(list(samples)))))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"samples": self.k, "l1": float(np.mean(self.l1))}
        if self.deep:
            out |= {"features": float(np.mean(self.deep)), "features_measure": FEATURES}
        return out
