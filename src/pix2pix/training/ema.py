"""An exponential moving average of G's weights (and batch-norm buffers), kept beside G.

After optimiser step t (1-based) every floating-point parameter and buffer becomes
ema = d * ema + (1 - d) * weight with d = min(decay, (1 + t) / (10 + t)): the warm-up
keeps the average from being dominated by the random initial weights early on. Integer
buffers (batch norm's step count) are copied. The average is kept in float32 on G's
device and is what validation, best/ and (by default) every inference command use.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay_at(step: int, decay: float) -> float:
    """The decay used after optimiser step `step` (1-based): warm-up, then `decay`."""
    return min(decay, (1.0 + step) / (10.0 + step))


class WeightAverage:
    """`update(g, step)` after each G step; `module` is the averaged copy (eval mode)."""

    def __init__(self, generator: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module, step: int) -> None:
        d = ema_decay_at(step, self.decay)
        mine = self.module.state_dict()
        for name, value in generator.state_dict().items():
            target = mine[name]
            if target.is_floating_point():
                target.lerp_(value.to(target.dtype), 1.0 - d)
            else:
                target.copy_(value)
