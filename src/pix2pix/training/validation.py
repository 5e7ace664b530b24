"""Validation during training: metrics on held-out pairs, and which step was best.

Held-out pairs come from `--val-data DIR`, or from `--val-fraction F` of the training
pairs (`data.holdout`). Validation scores them through the loop `pix2pix evaluate` uses
(`evaluation.scoring`): at the evaluation size, in the paper's test mode with seed = the
pair's index (or eval mode with --val-eval), on outputs as a saved file holds them (the
run's output depth; lab: RGB of input L* and predicted a*b*). Any
data the run trains on validates: N channels, 16 bits, stacked inputs, lab. It runs under
`torch.random.fork_rng` and never updates batch-norm statistics, so a run validates
without changing a single weight of the training: resumed and uninterrupted runs still
end bit-identical.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from pix2pix.checkpoint import unwrap
from pix2pix.config import RunConfig
from pix2pix.data.pairs.folders import PairFiles
from pix2pix.errors import ConfigError, setting
from pix2pix.evaluation.fid import (
    INSTALL,
    FeatureExtractor,
    default_weights_path,
    fid,
    load_inception,
)
from pix2pix.evaluation.metrics import HIGHER_IS_BETTER
from pix2pix.evaluation.pairs import load_eval_pairs, output_channels, target_tensor
from pix2pix.evaluation.scoring import score_pairs
from pix2pix.runtime import resolve_speed
from pix2pix.translate import Pix2Pix

log = logging.getLogger(__name__)


class Validator:
    """Scores a generator on fixed held-out pairs and remembers the best score."""

    def __init__(
        self,
        config: RunConfig,
        pairs: list[PairFiles],
        features: FeatureExtractor | None = None,
    ) -> None:
        mon = config.monitor
        self.metric = mon.val_metric
        self.eval_mode = mon.val_eval
        self.every = mon.val_every
        self.config = config
        if self.metric == "fid" and output_channels(config) not in (1, 3):
            raise ConfigError(
                f"{setting('--val-metric')} fid needs 1- or 3-channel outputs, this run's have "
                f"{output_channels(config)}; pick another {setting('--val-metric')}"
            )
        if self.metric == "fid" and features is None:
            if default_weights_path() is None:
                raise ConfigError(
                    f"{setting('--val-metric')} fid needs the Inception weights; run: {INSTALL}"
                )
            features = FeatureExtractor(load_inception())
        if self.metric == "fid" and len(pairs) < 2:
            raise ConfigError(f"{setting('--val-metric')} fid needs at least 2 held-out pairs")
        self.features = features
        self.pairs = load_eval_pairs(pairs, config)  # decoded once, scored at every check
        self.names = [p.name for p in self.pairs]
        self.targets = [target_tensor(p) for p in self.pairs]  # (1, C, H, W)
        self.best: dict[str, Any] | None = None  # {"metric", "value", "step"}
        self._real: np.ndarray | None = None  # Inception features of the targets, once

    def __len__(self) -> int:
        return len(self.names)

    def due(self, step: int, end_of_epoch: bool, final: bool) -> bool:
        """Validate after this step? Every --val-every steps (else each epoch), and last."""
        return final or (step % self.every == 0 if self.every else end_of_epoch)

    def evaluate(
        self, generator: nn.Module, stride: int, device: torch.device, precision: str = "fp32"
    ) -> dict[str, float]:
        """Mean metrics of `generator` on the held-out pairs, scored as `pix2pix evaluate`
        scores a checkpoint (`evaluation.scoring`: weights cast to `precision`, the same
        mode and per-pair seeds); the generator's weights, buffers, mode and the global
        RNG are as they were afterwards."""
        speed = resolve_speed(device, "infer", precision, compile="off")
        # the plain module (not a DDP or torch.compile wrapper); copied if it must be cast
        model = Pix2Pix(unwrap(generator), self.config, device, speed)
        scored = list(score_pairs(model, self.pairs, eval_mode=self.eval_mode))
        means = {k: float(np.mean([s.metrics[k] for s in scored])) for k in scored[0].metrics}
        if self.features is not None and len(scored) >= 2:
            fake = np.concatenate([self.features(s.output) for s in scored])
            means["fid"] = fid(fake, self._real_features())
        return means

    def _real_features(self) -> np.ndarray:
        if self._real is None:
            assert self.features is not None
            self._real = np.concatenate([self.features(y) for y in self.targets])
        return self._real

    def improved(self, metrics: dict[str, float]) -> bool:
        """Whether `metrics` beat the best so far on the chosen metric."""
        value = metrics[self.metric]
        if math.isnan(value):
            return False
        if self.best is None or self.best["metric"] != self.metric:
            return True
        if HIGHER_IS_BETTER[self.metric]:
            return value > self.best["value"]
        return value < self.best["value"]

    def state(self) -> dict[str, Any]:
        return {"best": self.best} if self.best else {}

    def load_state(self, state: dict[str, Any]) -> None:
        best = state.get("best")
        if best and best.get("metric") != self.metric:
            log.info(
                "validation now follows %s (was %s): best/ will be replaced at the next check",
                self.metric,
                best.get("metric"),
            )
        self.best = best
