"""Training-health diagnostics: warnings for the failures pix2pix users meet most.

Always on, fed every step's record (and the step's output and target). Each condition
is judged over a window of steps so that one odd batch says nothing; a warning is given
once when its condition starts to hold, and again only after it has cleared. Each names
what usually helps.

- d_wins: D's loss below 0.01 for `window` steps in a row (D has won; G gets no signal);
- d_perfect: D's patch accuracy above 0.99 for `window` steps in a row;
- l1_plateau: the mean reconstruction loss over a block of `plateau` steps has not
  improved on the best block by 1% for `patience` blocks;
- collapse: the outputs stop depending on the input: from one batch to the next, the
  mean change of G's output is under 5% of the mean change of the target, for
  `window` steps in a row;
- misaligned: an l1_plateau at a high loss (best block mean above HIGH_L1) while D told
  real from fake in over 90% of patches through the block: the signature of pairs that
  do not line up, which L1 can only blur.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from pix2pix.training.runlog import RunLog

log = logging.getLogger("pix2pix")

ADVICE = {
    "d_wins": "D's loss has stayed below 0.01: D has won and G learns only from L1. "
    "Usually helps: --spectral-norm, --augment translation,cutout, --r1-gamma 1, or a "
    "lower --lr-d",
    "d_perfect": "D has classified over 99% of patches right for a while: it is "
    "overpowering G. Usually helps: --augment translation,cutout,color (few pairs), "
    "--spectral-norm, a lower --lr-d",
    "l1_plateau": "G's reconstruction loss has stopped falling. Usually helps: the LR "
    "decay (--decay-epochs), more data or --augment; if outputs are blurry, a larger "
    "discriminator or a lower --lambda-l1",
    "collapse": "G's outputs barely change with the input (mode collapse). Usually "
    "helps: --lambda-l1 100 (the paper's), --feature-matching 10, --spectral-norm, "
    "restarting from an earlier checkpoint",
    "misaligned": "the reconstruction loss has stopped falling at a high value while D "
    "tells real from fake: the signature of pairs that do not line up (L1 blurs them). "
    "Check a few pairs overlaid; usually helps: --reconstruction aligned --align-guide "
    "input --align-tiles 1 with --align-shift a little over the pairs' misregistration "
    "in pixels (`pix2pix data misalign` makes such pairs from aligned ones, to compare)",
}

HIGH_L1 = 0.1  # mean |G(x) - y| on [-1, 1] (5% of the range) a fitted model stays above


@dataclass
class Streak:
    """Steps in a row a condition held, and whether its warning has been given."""

    steps: int = 0
    warned: bool = False

    def update(self, holds: bool, window: int) -> bool:
        """Count this step; True when the warning is due now."""
        self.steps = self.steps + 1 if holds else 0
        if not holds:
            self.warned = False
            return False
        if self.steps >= window and not self.warned:
            self.warned = True
            return True
        return False


@dataclass
class Health:
    window: int = 200
    plateau: int = 500
    patience: int = 4
    streaks: dict[str, Streak] = field(default_factory=dict)
    _block: list[float] = field(default_factory=list)
    _block_acc: list[float] = field(default_factory=list)
    _best: float = float("inf")
    _stale: int = 0
    _previous: tuple[torch.Tensor, torch.Tensor] | None = None

    def _streak(self, name: str, holds: bool) -> bool:
        return self.streaks.setdefault(name, Streak()).update(holds, self.window)

    def after_step(
        self, record: dict[str, float], fake: torch.Tensor, target: torch.Tensor
    ) -> list[str]:
        """The names of the warnings due after this step (see ADVICE)."""
        due = []
        if "loss_d" in record and self._streak("d_wins", record["loss_d"] < 0.01):
            due.append("d_wins")
        if "d_acc" in record and self._streak("d_perfect", record["d_acc"] > 0.99):
            due.append("d_perfect")
        if "d_acc" in record:
            self._block_acc.append(record["d_acc"])
        if "loss_g_l1" in record and self._plateaued(record["loss_g_l1"]):
            due.append("l1_plateau")
            accuracy = sum(self._block_acc) / max(1, len(self._block_acc))
            if self._best > HIGH_L1 and accuracy > 0.9:
                due.append("misaligned")
        if len(self._block) == 0:  # a block ended: D's accuracy is judged per block
            self._block_acc = []
        if self._collapsed(fake.detach(), target.detach()):
            due.append("collapse")
        return due

    def check(
        self, record: dict[str, float], fake: torch.Tensor, target: torch.Tensor, runlog: RunLog
    ) -> None:
        """`after_step`, each warning due logged and written to the run log."""
        for name in self.after_step(record, fake, target):
            log.warning("step %d: %s", record["step"], ADVICE[name])
            runlog.write({"step": record["step"], "warning": name, "message": ADVICE[name]})

    def _plateaued(self, l1: float) -> bool:
        self._block.append(l1)
        if len(self._block) < self.plateau:
            return False
        mean = sum(self._block) / len(self._block)
        self._block = []
        if mean < 0.99 * self._best:
            self._best, self._stale = mean, 0
            return False
        self._stale += 1
        return self._stale == self.patience  # once per plateau

    def _collapsed(self, fake: torch.Tensor, target: torch.Tensor) -> bool:
        previous, self._previous = self._previous, (fake.float(), target.float())
        if previous is None or previous[0].shape != fake.shape:
            return False
        out_change = (self._previous[0] - previous[0]).abs().mean()
        target_change = (self._previous[1] - previous[1]).abs().mean()
        if target_change < 1e-6:  # the same target twice says nothing
            return False
        return self._streak("collapse", bool(out_change < 0.05 * target_change))
