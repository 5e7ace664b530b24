"""Segmentation for the paper's FCN-score: palettes, a small FCN, its training, the scores."""

from pix2pix.palette import IGNORE, PRESETS, Palette, colors_to_classes, parse_palette
from pix2pix.segmentation.scores import confusion_matrix, fcn_scores
from pix2pix.segmentation.segmenter import Segmenter, SegmenterConfig, train_segmenter

__all__ = [
    "IGNORE",
    "PRESETS",
    "Palette",
    "Segmenter",
    "SegmenterConfig",
    "colors_to_classes",
    "confusion_matrix",
    "fcn_scores",
    "parse_palette",
    "train_segmenter",
]
