"""Epoch batch order: a permutation derived from (seed, epoch), resumable mid-epoch.

The order is a pure function of (seed, epoch), so a resumed run skips the batches it has
already done and then sees exactly the batches an uninterrupted run would. With
`world_size` > 1 each rank takes every world_size-th index of the same permutation
(padded by wrapping so every rank has the same number of batches).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

_ORDER_STREAM = 0


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields batches of (epoch, index) keys for `PairedDataset`."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        if size < 1 or batch_size < 1:
            raise ValueError(f"need size >= 1 and batch_size >= 1, got {size}, {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.epoch = 0
        self.skip_batches = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Select the epoch's order, skipping the first `skip_batches` batches (resume)."""
        self.epoch = epoch
        self.skip_batches = skip_batches

    @property
    def per_rank(self) -> int:
        return math.ceil(self.size / self.world_size)

    def __len__(self) -> int:
        """Batches per epoch on this rank (not counting skipped ones)."""
        return math.ceil(self.per_rank / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """This rank's indices for `epoch`."""
        if self.shuffle:
            perm = np.random.default_rng([self.seed, epoch, _ORDER_STREAM]).permutation(self.size)
        else:
            perm = np.arange(self.size)
        total = self.per_rank * self.world_size
        perm = np.resize(perm, total)  # wrap around so that every rank gets per_rank indices
        return perm[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        mine = self.order(self.epoch)
        for start in range(self.skip_batches * self.batch_size, len(mine), self.batch_size):
            yield [(self.epoch, int(i)) for i in mine[start : start + self.batch_size]]
