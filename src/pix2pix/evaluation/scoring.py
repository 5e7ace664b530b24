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

SAMPLE_SEEDS = 1_000_003  # dropout seeds of a pair's samples k = 1, 2, ... step by this


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
    samples: int = 1,
) -> Iterator[Scored]:
    """Translate and score pairs one at a time; pair i uses dropout seed `seed + i`. With
    `codes` (K, nz) (a model with a latent code) each pair is translated once per code;
    without, `samples` times with dropout seeds seed + i + k * SAMPLE_SEEDS (paper mode:
    the paper's only noise). Metrics are the mean over the outputs (`raw`, `output`: the
    first)."""
    for i, pair in enumerate(pairs):
        x, y = model_input(pair, model.config), target_tensor(pair)
        runs = [(seed + i + k * SAMPLE_SEEDS, None) for k in range(samples)]
        if codes is not None:
            runs = [(seed + i, {"z": z[None]}) for z in codes]
        raws = [model.translate_tensor(x, eval_mode=eval_mode, seed=s, extra=e) for s, e in runs]
        outputs = tuple(output_image(raw, x, model.config) for raw in raws)
        per = [image_metrics(output, y) for output in outputs]
        metrics = {k: sum(m[k].item() for m in per) / len(per) for k in per[0]}
        yield Scored(i, pair, x, raws[0], outputs[0], y, metrics, outputs, tuple(raws))
