"""The choices config fields take: one Literal (or table) each, read by the field checks,
the flags' `choices` and the code that acts on them."""

from __future__ import annotations

from typing import Literal, get_args

Direction = Literal["AtoB", "BtoA"]
Layout = Literal["auto", "aligned", "paired", "inputs"]
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
Resize = Literal["square", "width"]
# What each preprocess does, the one place it is decided: (resize to --load-size: square
# or the width, keeping the aspect ratio; None: no resize), then a random crop or not.
PREPROCESS_STEPS: dict[str, tuple[Resize | None, bool]] = {
    "resize_and_crop": ("square", True),
    "crop": (None, True),
    "scale_width": ("width", False),
    "scale_width_and_crop": ("width", True),
    "none": (None, False),
}
CacheMode = Literal["auto", "on", "off"]
ColorSpace = Literal["rgb", "lab"]
OutputDepth = Literal["auto", "uint8", "uint16", "float32"]
Norm = Literal["batch", "instance", "none"]
GanLoss = Literal["vanilla", "lsgan", "hinge"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Switch = Literal["auto", "on", "off"]
CompileChoice = Literal["auto", "on", "off", "reduce-overhead", "max-autotune"]
ValMetric = Literal["l1", "mse", "psnr", "ssim", "ms_ssim", "fid"]
Upsample = Literal["transpose", "resize-conv", "resize-conv-head"]
Reconstruction = Literal["l1", "l2", "pyramid", "aligned"]
AlignGuide = Literal["output", "input"]
Recipe = Literal["paper", "improved", "spade", "oasis"]
Labels = Literal["none", "palette", "index"]  # what a label model's input holds
WhereAdd = Literal["input", "all"]  # where a U-Net takes its latent code
Weights = Literal["auto", "ema", "raw"]  # which generator weights inference loads
Augmentation = Literal["translation", "cutout", "color"]  # what --augment may name
AUGMENTATIONS: tuple[Augmentation, ...] = get_args(Augmentation)
