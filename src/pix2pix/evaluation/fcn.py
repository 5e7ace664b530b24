"""FCN-scores of a model (the paper's sec. 4.2), accumulated pair by pair during `evaluate`.

A segmenter trained on real photos (`pix2pix.segmentation`) segments each output and each
real target; both are scored against the model's input label map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pix2pix.data.pairs.datasets import oriented
from pix2pix.data.pairs.folders import PairFiles
from pix2pix.evaluation.pairs import EvalPair
from pix2pix.segmentation import Segmenter, confusion_matrix, fcn_scores
from pix2pix.segmentation.data import read_labels


@dataclass
class FcnScores:
    """Confusion matrices of the segmenter on outputs and on real targets."""

    segmenter: Segmenter
    direction: str
    generated: np.ndarray = field(init=False)
    real: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        k = self.segmenter.num_classes
        self.generated = np.zeros((k, k), dtype=np.int64)
        self.real = np.zeros((k, k), dtype=np.int64)

    def add(self, pair: PairFiles, p: EvalPair, output: torch.Tensor, target: torch.Tensor) -> dict:
        """Accumulate one pair; returns its per-image pixel accuracies.

        The truth is the model's input label map at its file's size: colours mapped to the
        segmenter's palette, or (index segmenters) the class numbers stored in the file.
        """
        seg = self.segmenter
        if seg.palette is not None:
            truth = seg.label_classes(p.raw_input)
        else:
            _, photo_side = oriented(self.direction, "A", "B")  # the target is the photo
            truth = seg.label_classes(read_labels(pair, photo_side, None, seg.num_classes))
        row = {}
        for name, image, conf in (
            ("generated", output, self.generated),
            ("real", target, self.real),
        ):
            c = confusion_matrix(seg.predict(image)[0], truth, seg.num_classes)
            conf += c
            row[f"fcn_pixel_acc_{name}"] = float(np.trace(c) / max(c.sum(), 1))
        return row

    def scores(self) -> dict[str, Any]:
        names = self.segmenter.names
        return {
            "generated": fcn_scores(self.generated, names),
            "real": fcn_scores(self.real, names),
        }
