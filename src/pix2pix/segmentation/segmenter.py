"""Train, save and load the segmenter that FCN-scores are computed with.

`train_segmenter(SegmenterConfig(...), out)` fits a `SegNet` on real photo -> label-map
pairs and writes a self-describing folder:

    config.json              format, the SegmenterConfig, the classes (names and, for
                             colour-coded labels, the palette), training summary
    segmenter.safetensors    the network's weights and batch-norm statistics

`Segmenter.load(out)` needs nothing else: the palette travels in config.json.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from pix2pix.checkpoint import load_weights, read_described, weights_bytes
from pix2pix.config import DataConfig, Layout, at_least, check_fields, check_seed, ref
from pix2pix.data.pairs.folders import resolve_root
from pix2pix.errors import ConfigError, UserError
from pix2pix.fileio import check_replaceable, replace_folder
from pix2pix.lock import folder_lock, sibling_lock
from pix2pix.palette import IGNORE, Palette, colors_to_classes, parse_palette
from pix2pix.runtime import resolve_device
from pix2pix.segmentation.data import SegmentationData, resize_labels
from pix2pix.segmentation.net import SegNet
from pix2pix.segmentation.scores import confusion_matrix, fcn_scores

log = logging.getLogger(__name__)

FORMAT = "pix2pix-segmenter"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "segmenter.safetensors"

LabelFormat = Literal["color", "index"]
Side = Literal["A", "B"]


@dataclass(frozen=True)
class SegmenterConfig:
    """A segmenter for FCN-scores: its data, network and training."""

    root: str = ""
    """Dataset of real photo / label-map pairs (aligned A|B files or A/ and B/ folders);
    a subfolder named after --split is used when present."""
    split: str = "train"
    """Subfolder of --data to train on, when it exists."""
    layout: Layout = "auto"
    """aligned: each file holds A and B side by side; paired: A/ and B/ folders; auto."""
    photo_side: Side = "A"
    """Which side holds the photo (the other holds the labels); facades: A."""
    labels: LabelFormat = "color"
    """color: colour-coded label maps, mapped to --palette by nearest colour; index:
    images whose pixel values are class numbers (255: ignore)."""
    palette: str = ""
    """color labels: a preset (facades), a JSON list of [R, G, B] triples, or a JSON file."""
    num_classes: int = 0
    """index labels: the number of classes."""
    size: int = 128
    """Images are resized to size x size for training and segmentation (at least 32, the
    network's stride)."""
    width: int = 16
    """Filters in the network's first stage (doubling at each of 4 downsamplings)."""
    epochs: int = 30
    """Passes over the training pairs."""
    batch_size: int = 4
    """Images per step."""
    lr: float = 1e-3
    """Adam learning rate (cosine-decayed to zero over training)."""
    seed: int = 0
    """Seed for initialisation, batch order and jitter."""
    device: str = "auto"
    """auto (cuda when available, else cpu), cpu, cuda, cuda:N, mps."""

    def __post_init__(self) -> None:
        check_fields(self)
        at_least(self, "size", 32)  # the network's stride
        at_least(self, "width", 1)
        at_least(self, "epochs", 1)
        at_least(self, "batch_size", 1)
        check_seed(self.seed)
        if self.lr <= 0:
            raise ConfigError(f"{ref('lr')} {self.lr} is out of range; use a value > 0")
        if self.labels == "color" and not self.palette:
            raise ConfigError(
                f"{ref('labels')} color needs {ref('palette')} (a preset such as facades, or JSON)"
            )
        if self.labels == "index" and not 2 <= self.num_classes < IGNORE:
            raise ConfigError(
                f"{ref('labels')} index needs {ref('num_classes')} between 2 and {IGNORE - 1} "
                f"(got {self.num_classes})"
            )


def _classes(config: SegmenterConfig) -> tuple[Palette | None, list[str]]:
    if config.labels == "color":
        palette = parse_palette(config.palette)
        return palette, list(palette.names)
    return None, [f"class_{i}" for i in range(config.num_classes)]


class Segmenter:
    """A trained SegNet with its classes: photos -> class maps at `size` x `size`."""

    def __init__(
        self,
        net: SegNet,
        config: SegmenterConfig,
        names: list[str],
        palette: Palette | None,
        device: torch.device,
    ) -> None:
        self.net = net.to(device).eval()
        self.config = config
        self.names = names
        self.palette = palette
        self.device = device

    @property
    def size(self) -> int:
        return self.config.size

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Segmenter:
        """From a folder written by `train_segmenter`; errors name the folder and the fix."""
        path = Path(path).expanduser()
        config_file = path / CONFIG_FILE
        if not config_file.is_file():
            raise UserError(
                f"{path}: no segmenter here ({CONFIG_FILE} missing); "
                "train one with `pix2pix segmenter train`"
            )
        meta = read_described(path, FORMAT, FORMAT_VERSION, "segmenter")
        try:
            config = SegmenterConfig(**meta["config"])
            classes = meta["classes"]
        except (TypeError, KeyError, UserError) as exc:
            raise UserError(f"{config_file}: not a valid segmenter config ({exc})") from None
        palette = None
        if classes.get("colors") is not None:
            palette = Palette(tuple(map(tuple, classes["colors"])), tuple(classes["names"]))
        net = SegNet(meta["in_channels"], len(classes["names"]), config.width)
        load_weights(net, path / WEIGHTS_FILE)
        return cls(net, config, list(classes["names"]), palette, resolve_device(device))

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> np.ndarray:
        """(B, C, H, W) in [-1, 1], any size -> (B, size, size) uint8 class indices.

        Images are resized (bilinear, antialiased) to the segmenter's size first.
        """
        x = images.float().to(self.device)
        if x.shape[1] == 1 and self.net.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
        return self.net(x).argmax(1).to(torch.uint8).cpu().numpy()

    def label_classes(self, labels: np.ndarray) -> np.ndarray:
        """A label map at any size -> (size, size) uint8 class indices.

        labels: (H, W, 3) uint8 colours (colour-coded segmenters) or (H, W) indices.
        """
        if self.palette is not None:
            if labels.ndim != 3 or labels.shape[2] != 3:
                raise ValueError(f"expected an (H, W, 3) colour label map, got {labels.shape}")
            labels = colors_to_classes(labels, self.palette)
        elif labels.ndim == 3:
            labels = labels[:, :, 0]
        return resize_labels(labels.astype(np.uint8), self.size)


def is_segmenter(path: Path) -> bool:
    """Whether the folder `path` holds a segmenter written by `train_segmenter`."""
    try:
        meta = json.loads((Path(path) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def train_segmenter(config: SegmenterConfig, out: str | Path, *, overwrite: bool = False) -> Path:
    """Train a segmenter on config's data and write it to `out`; returns `out`.

    `out` must be absent or empty, or hold an earlier segmenter and `overwrite` be set;
    it is replaced only once the new segmenter is complete (see `staged_folder`).
    The global torch RNG is left as it was. Logs the loss and training pixel accuracy
    each epoch, and the FCN-scores of the final network on its (unjittered) training data.
    """
    out = Path(out)
    check_replaceable(out, "a segmenter", is_segmenter, overwrite=overwrite)
    target = out.resolve()  # a link to the folder stays a link: its target is replaced
    target.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(sibling_lock(target), f"segmenter folder {out}"):
        _train(config, target, overwrite)
    return out


def _train(config: SegmenterConfig, out: Path, overwrite: bool) -> Path:
    palette, names = _classes(config)
    root = resolve_root(DataConfig(root=config.root, split=config.split))
    data = SegmentationData(
        root, config.layout, config.photo_side, palette, len(names), config.size
    )
    device = resolve_device(config.device)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        net = SegNet(data.photos.shape[1], len(names), config.width).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)
        # batch norm needs 2 values per channel: a last batch of one image (1x1 at the
        # bottom of a 32-pixel input) is left out of that epoch; the order changes each epoch
        per_epoch = len(data) // config.batch_size + (len(data) % config.batch_size > 1)
        if per_epoch == 0:
            raise UserError(f"{root}: the segmenter needs at least 2 pairs to train on")
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.epochs * per_epoch)
        for epoch in range(config.epochs):
            net.train()
            order = np.random.default_rng([config.seed, epoch]).permutation(len(data))
            total, correct, counted = 0.0, 0, 0
            for b in range(per_epoch):
                x, y = data.batch(
                    order[b * config.batch_size : (b + 1) * config.batch_size], config.seed, epoch
                )
                x, y = x.to(device), y.to(device)
                logits = net(x)
                loss = F.cross_entropy(logits, y, ignore_index=IGNORE)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(x)
                keep = y != IGNORE
                correct += int((logits.argmax(1) == y)[keep].sum())
                counted += int(keep.sum())
            log.info(
                "segmenter epoch %d/%d: loss %.4f  pixel acc %.3f  (%.0f s)",
                epoch + 1,
                config.epochs,
                total / len(data),
                correct / max(counted, 1),
                time.perf_counter() - start,
            )
        net.eval()
        seg = Segmenter(net, config, names, palette, device)
        conf = np.zeros((len(names), len(names)), dtype=np.int64)
        for b in range(0, len(data), 16):
            idx = np.arange(b, min(b + 16, len(data)))
            x, y = data.batch(idx, config.seed, 0, jitter=False)
            conf += confusion_matrix(seg.predict(x), y.numpy(), len(names))
    scores = fcn_scores(conf, names)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": dataclasses.asdict(config),
        "classes": {"names": names, "colors": palette.to_dict()["colors"] if palette else None},
        "in_channels": int(data.photos.shape[1]),
        "trained_on": {"folder": str(root), "pairs": len(data)},
        "train_scores": {k: scores[k] for k in ("pixel_acc", "class_acc", "class_iou")},
        "seconds": round(time.perf_counter() - start, 1),
    }
    check_replaceable(out, "a segmenter", is_segmenter, overwrite=overwrite)  # still so?
    replace_folder(
        out,
        {
            WEIGHTS_FILE: weights_bytes(net),
            CONFIG_FILE: (json.dumps(meta, indent=2) + "\n").encode(),
        },
    )
    log.info(
        "segmenter written to %s: training pixel acc %.3f, class IoU %.3f",
        out,
        scores["pixel_acc"],
        scores["class_iou"],
    )
    return out
