"""Held-out pairs for validation: `--val-data DIR`, or `--val-fraction F` of the training
pairs, a fixed subset drawn from the run's seed and removed from training."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from pix2pix.config import RunConfig
from pix2pix.data.pairs.datasets import PairedDataset
from pix2pix.data.pairs.folders import PairFiles, find_pairs, pairs_folder
from pix2pix.errors import UserError, setting

_HOLDOUT_STREAM = 3  # distinguishes the hold-out draw from the other seeded streams


def holdout_indices(count: int, fraction: float, seed: int) -> list[int]:
    """Sorted indices of the pairs held out: round(fraction * count), at least 1, and at
    least one pair left for training. A pure function of (count, fraction, seed)."""
    n = min(count - 1, max(1, round(fraction * count)))
    if n < 1:
        raise UserError(
            f"{setting('--val-fraction')} needs at least 2 training pairs, found {count}"
        )
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
