"""Validation during training: metrics on held-out pairs, and which step was best.

Held-out pairs come from `--val-data DIR`, or from `--val-fraction F` of the training
pairs: a fixed subset drawn from the run's seed, removed from training
(`split_holdout`). Validation translates them one at a time at the evaluation size
(`pix2pix.evaldata`), in the paper's test mode with seed = the pair's index (or eval
mode with --val-eval), on outputs as a saved file holds them (the run's output depth;
lab: RGB of input L* and predicted a*b*), exactly as `pix2pix evaluate` scores them. Any
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
from torch.utils.data import Dataset

from pix2pix.config import RunConfig
from pix2pix.data.datasets import PairedDataset, PairFiles, find_pairs
from pix2pix.errors import ConfigError, UserError
from pix2pix.evaldata import (
    load_eval_pairs,
    model_input,
    output_channels,
    output_image,
    pairs_folder,
    target_tensor,
)
from pix2pix.fid import INSTALL, FeatureExtractor, default_weights_path, fid, load_inception
from pix2pix.metrics import HIGHER_IS_BETTER, image_metrics
from pix2pix.nets.padding import run_any_size
from pix2pix.runtime import autocast
from pix2pix.translate import inference_mode

log = logging.getLogger(__name__)

_HOLDOUT_STREAM = 3  # distinguishes the hold-out draw from the other seeded streams


def holdout_indices(count: int, fraction: float, seed: int) -> list[int]:
    """Sorted indices of the pairs held out: round(fraction * count), at least 1, and at
    least one pair left for training. A pure function of (count, fraction, seed)."""
    n = min(count - 1, max(1, round(fraction * count)))
    if n < 1:
        raise UserError(f"--val-fraction needs at least 2 training pairs, found {count}")
    perm = np.random.default_rng([seed, _HOLDOUT_STREAM]).permutation(count)
    return sorted(int(i) for i in perm[:n])


class TrainingSubset(Dataset):
    """The pairs of a PairedDataset minus the held-out ones, re-indexed 0..N-1.

    Keys are (epoch, index) like PairedDataset's; augmentation stays a function of the
    pair's original index.
    """

    def __init__(self, dataset: PairedDataset, keep: list[int]) -> None:
        self.dataset = dataset
        self.keep = keep
        self.root = dataset.root

    def __len__(self) -> int:
        return len(self.keep)

    def output_sizes(self) -> set[tuple[int, int]]:
        return self.dataset.output_sizes()

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | int]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        return self.dataset[(epoch, self.keep[index])]


def split_holdout(dataset: PairedDataset, config: RunConfig) -> tuple[Dataset, list[PairFiles]]:
    """(training data, held-out pairs) for the run's validation settings.

    Without --val-fraction the dataset is returned unchanged (and --val-data's pairs).
    """
    mon = config.monitor
    if mon.val_fraction:
        held = holdout_indices(len(dataset), mon.val_fraction, config.train.seed)
        keep = [i for i in range(len(dataset)) if i not in set(held)]
        return TrainingSubset(dataset, keep), [dataset.pairs[i] for i in held]
    if mon.val_data:
        root = pairs_folder(mon.val_data, "val", "--val-data")
        return dataset, find_pairs(root, config.data.layout)
    return dataset, []


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
                f"--val-metric fid needs 1- or 3-channel outputs, this run's have "
                f"{output_channels(config)}; pick another --val-metric"
            )
        if self.metric == "fid" and features is None:
            if default_weights_path() is None:
                raise ConfigError(f"--val-metric fid needs the Inception weights; run: {INSTALL}")
            features = FeatureExtractor(load_inception())
        if self.metric == "fid" and len(pairs) < 2:
            raise ConfigError("--val-metric fid needs at least 2 held-out pairs")
        self.features = features
        eval_pairs = load_eval_pairs(pairs, config)
        self.names = [p.name for p in eval_pairs]
        self.inputs = [model_input(p, config) for p in eval_pairs]  # (1, C_in, H, W)
        self.targets = [target_tensor(p) for p in eval_pairs]  # (1, C, H, W)
        self.best: dict[str, Any] | None = None  # {"metric", "value", "step"}
        self._real: np.ndarray | None = None  # Inception features of the targets, once

    def __len__(self) -> int:
        return len(self.names)

    def due(self, step: int, end_of_epoch: bool, final: bool) -> bool:
        """Validate after this step? Every --val-every steps (else each epoch), and last."""
        return final or (step % self.every == 0 if self.every else end_of_epoch)

    @torch.no_grad()
    def evaluate(
        self, generator: nn.Module, stride: int, device: torch.device, precision: str = "fp32"
    ) -> dict[str, float]:
        """Mean metrics of `generator` on the held-out pairs; the generator's weights,
        buffers, mode and the global RNG are as they were afterwards."""
        was_training = generator.training
        outputs, rows = [], []
        devices = [device] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), inference_mode(generator, self.eval_mode):
                for i, (x, y) in enumerate(zip(self.inputs, self.targets)):
                    torch.manual_seed(i)  # the seed `pix2pix evaluate` gives pair i
                    with autocast(precision, device):
                        out = run_any_size(generator, x.to(device), stride)
                    out = output_image(out.float().cpu(), x, self.config)
                    rows.append({k: v.item() for k, v in image_metrics(out, y).items()})
                    outputs.append(out)
        finally:
            generator.train(was_training)
        means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        if self.features is not None and len(outputs) >= 2:
            fake = np.concatenate([self.features(o) for o in outputs])
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
