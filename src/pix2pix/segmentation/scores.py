"""FCN-scores (Isola et al. 2017, sec. 4.2): segmentation of outputs scored against labels.

Scores come from one confusion matrix over all pixels of all images (rows: true class,
columns: predicted class), as in the FCN evaluation code the paper used:

- per-pixel accuracy: correct pixels / all scored pixels;
- per-class accuracy: mean over classes present in the labels of (correct / pixels of
  the class);
- class IoU: mean over classes present in labels or predictions of
  intersection / union.

Pixels labelled IGNORE (255) are not scored.
"""

from __future__ import annotations

import numpy as np

from pix2pix.palette import IGNORE


def confusion_matrix(predicted: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts [true class, predicted class] for two same-shape index arrays."""
    if predicted.shape != target.shape:
        raise ValueError(f"shapes differ: predicted {predicted.shape}, target {target.shape}")
    t = target.reshape(-1).astype(np.int64)
    p = predicted.reshape(-1).astype(np.int64)
    keep = t != IGNORE
    t, p = t[keep], p[keep]
    if t.size and (t.max() >= num_classes or p.max() >= num_classes):
        raise ValueError(f"class index out of range for {num_classes} classes")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def fcn_scores(confusion: np.ndarray, names: list[str] | None = None) -> dict[str, object]:
    """{'pixel_acc', 'class_acc', 'class_iou', 'per_class': {name: {'acc', 'iou'}}}.

    Per-class entries are None for a class absent from both labels and predictions.
    """
    conf = confusion.astype(np.float64)
    diag, rows, cols = np.diag(conf), conf.sum(1), conf.sum(0)
    total = conf.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(rows > 0, diag / rows, np.nan)
        union = rows + cols - diag
        iou = np.where(union > 0, diag / union, np.nan)
    names = names or [f"class_{i}" for i in range(len(conf))]

    def mean(values: np.ndarray) -> float:
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    return {
        "pixel_acc": float(diag.sum() / total) if total else float("nan"),
        "class_acc": mean(acc),
        "class_iou": mean(iou),
        "per_class": {
            name: {
                "acc": None if np.isnan(a) else float(a),
                "iou": None if np.isnan(i) else float(i),
            }
            for name, a, i in zip(names, acc, iou)
        },
    }
