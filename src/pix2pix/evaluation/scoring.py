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
    metrics: dict[str, float]  # the mean over the samples
    samples: tuple[torch.Tensor, ...] = ()  # every code's output as its file holds it
    raws: tuple[torch.Tensor, ...] = ()  # and as the model gave it


def score_pairs(
    model: Pix2Pix,
    pairs: Iterable[EvalPair],
    *,
    eval_mode: bool,
    seed: int = 0,
    codes: torch.Tensor | None = None,
) -> Iterator[Scored]:
    """Translate and score pairs one at a time; pair i uses dropout seed `seed + i`. With
    `codes` (K, nz) (a model with a latent code) each pair is translated once per code
    and its metrics are the mean over the K outputs (`raw`, `output`: the first)."""
    for i, pair in enumerate(pairs):
        x, y = model_input(pair, model.config), target_tensor(pair)
        extras = [None] if codes is None else [{"z": z[None]} for z in codes]
        raws = [
            model.translate_tensor(x, eval_mode=eval_mode, seed=seed + i, extra=e) for e in extras
        ]
        outputs = tuple(output_image(raw, x, model.config) for raw in raws)
        per = [image_metrics(output, y) for output in outputs]
        metrics = {k: sum(m[k].item() for m in per) / len(per) for k in per[0]}
        yield Scored(i, pair, x, raws[0], outputs[0], y, metrics, outputs, tuple(raws))
