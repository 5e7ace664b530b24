"""The one scoring loop: `pix2pix evaluate` and validation during training both use it.

Each pair is translated by a `Pix2Pix` (the same weights cast, the same inference mode and
the same per-pair dropout seed in both uses), its output taken as the written file holds
it (`pairs.output_image`) and compared with the target by `metrics.image_metrics`. So
the numbers `best/` is chosen on are the numbers `evaluate` reports for that checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from pix2pix.evaluation.metrics import image_metrics
from pix2pix.evaluation.pairs import EvalPair, model_input, output_image, target_tensor
from pix2pix.translate import Pix2Pix


@dataclass(frozen=True)
class Scored:
    """One translated pair: tensors (1, C, H, W) in [-1, 1] and its metrics."""

    index: int
    pair: EvalPair
    input: torch.Tensor  # what the model saw
    raw: torch.Tensor  # the model's output
    output: torch.Tensor  # the output as its file holds it (rounded to the output depth)
    target: torch.Tensor
    metrics: dict[str, float]


def score_pairs(
    model: Pix2Pix, pairs: Iterable[EvalPair], *, eval_mode: bool, seed: int = 0
) -> Iterator[Scored]:
    """Translate and score pairs one at a time; pair i uses dropout seed `seed + i`."""
    for i, pair in enumerate(pairs):
        x, y = model_input(pair, model.config), target_tensor(pair)
        raw = model.translate_tensor(x, eval_mode=eval_mode, seed=seed + i)
        output = output_image(raw, x, model.config)
        metrics = {k: v.item() for k, v in image_metrics(output, y).items()}
        yield Scored(i, pair, x, raw, output, y, metrics)
