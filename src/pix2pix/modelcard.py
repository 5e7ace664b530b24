"""The model card (README.md) every checkpoint folder carries, written at save time.

It says what the model translates (direction, channels, colour space, palette), its
architecture, how it was trained (data folder name, steps, recipe, the options that
differ from the paper's), how to use it (CLI and Python), and, once `pix2pix evaluate`
has scored the checkpoint, the results (appended under "## Evaluation"). A Hugging Face
metadata header (YAML front matter) comes first, so the folder pushed to the Hub as is
shows up as an image-to-image model.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from pix2pix._version import __version__
from pix2pix.config import RunConfig, TrainConfig
from pix2pix.config.fields import flag_name
from pix2pix.fileio import atomic_write_text

CARD_FILE = "README.md"
EVALUATION = "## Evaluation"
RESULTS = ("fid", "kid", "l1", "ssim", "psnr", "class_iou", "diversity")

FRONT_MATTER = """---
library_name: pix2pix
pipeline_tag: image-to-image
tags:
- pix2pix
- image-to-image
- conditional-gan
- {generator}
---
"""


def _training_options(train: TrainConfig) -> str:
    """The non-runtime training settings that differ from the paper's defaults."""
    default = TrainConfig()
    changed = []
    for f in fields(TrainConfig):
        if f.metadata.get("runtime") or f.name in ("recipe", "init_from"):
            continue
        value = getattr(train, f.name)
        if value != getattr(default, f.name):
            changed.append(f"`{flag_name(f.name)} {value}`")
    return ", ".join(changed) or "none (the paper's recipe)"


def model_card(config: RunConfig, step: int, epoch: int, metadata: dict[str, Any]) -> str:
    m, d, t = config.model, config.data, config.train
    source, target = ("B", "A") if d.direction == "BtoA" else ("A", "B")
    data = Path(d.root).name or "(not recorded)"
    imported = metadata.get("imported_from")
    trained = (
        f"Imported from `{Path(imported['generator']).name}` "
        f"({imported['format']} format) by `pix2pix import official`; not trained here."
        if imported
        else f"On `{data}` ({d.direction}), {step} steps ({epoch} epochs), batch "
        f"{t.batch_size}, recipe `{t.recipe}`"
        + (f", fine-tuned from `{_name(t.init_from)}`" if t.init_from else "")
        + f". Options beyond the paper's: {_training_options(t)}."
    )
    lines = [
        FRONT_MATTER.format(generator=m.generator.replace("_", "-")),
        f"# pix2pix: {source} -> {target}",
        "",
        f"Translates {m.in_channels}-channel images (side {source} of the training pairs) "
        f"into {m.out_channels}-channel images (side {target}); colour space {d.color_space}"
        + (", with a label palette (see config.json)" if d.palette else "")
        + f"; outputs written as {d.written_depth}.",
        "",
        "## Architecture",
        "",
        f"- method: `{m.method}` (read back by every pix2pix command)",
        f"- generator: `{m.generator}`, ngf {m.ngf}, {m.norm} norm, dropout {m.dropout}, "
        f"upsampling `{m.upsample}`",
        f"- discriminator: `{m.discriminator}`, ndf {m.ndf}, "
        f"{'conditional' if m.conditional else 'unconditional'}, {m.d_scales} scale(s)",
        "",
        "## Training",
        "",
        trained,
        "",
        "## Use",
        "",
        "```bash",
        "pix2pix translate --checkpoint THIS_FOLDER images/ --out translated/",
        "```",
        "",
        "```python",
        "import pix2pix",
        "from PIL import Image",
        "",
        'model = pix2pix.load("THIS_FOLDER")',
        'model.translate(Image.open("input.png")).save("output.png")',
        "```",
        "",
        f"Written by pix2pix {__version__}.",
        "",
    ]
    return "\n".join(lines)


def _name(ref: str) -> str:
    """A checkpoint as the card names it: a Hub reference as is, a local one by its folder
    name (a card is read elsewhere: no local paths)."""
    return ref if ref.startswith("hf:") else Path(ref).name or ref


def append_evaluation(ckpt: Path, summary: dict[str, Any], split: str) -> None:
    """Add one line of `evaluate`'s results to the card in checkpoint folder `ckpt`."""
    card = Path(ckpt) / CARD_FILE
    if not card.exists() or card.is_symlink():
        return  # a checkpoint from before cards, or one in the Hub's cache: left as it is
    text = card.read_text()
    if EVALUATION not in text:
        head = " | ".join(("split", "images", "inference", *RESULTS))
        rule = "|---" * (3 + len(RESULTS)) + "|"
        text = text.rstrip("\n") + f"\n\n{EVALUATION}\n\n| {head} |\n{rule}\n"
    cells = [split, str(summary.get("images", "")), str(summary.get("inference", ""))]
    for key in RESULTS:
        value = _result(summary, key)
        cells.append("" if value is None else f"{value:.4g}")
    atomic_write_text(card, text.rstrip("\n") + "\n| " + " | ".join(cells) + " |\n")


def _result(summary: dict[str, Any], key: str) -> float | None:
    if key == "fid":
        return summary.get("fid")
    if key == "kid":
        kid = summary.get("kid")
        return kid.get("mean") if isinstance(kid, dict) else kid
    if key == "diversity":  # mean pairwise L1 of K samples per input (evaluate --samples)
        return summary.get("diversity", {}).get("l1")
    if key == "class_iou":
        return summary.get("fcn", {}).get("generated", {}).get("class_iou")
    return summary.get("mean", {}).get(key)
