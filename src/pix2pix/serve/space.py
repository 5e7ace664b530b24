"""`pix2pix export --format gradio`: a folder that runs a checkpoint in Gradio, ready to
push as a Hugging Face Space (or to run locally with `python app.py`).

It holds app.py (a `gradio.Interface`: an image in, its translation out, with the seed
and, for models with a latent code, the code's seed), requirements.txt, README.md with
the Space's front matter, and model/, the checkpoint's inference files (its config and
the generator's weights, the EMA average where there is one), unless the checkpoint is a
Hub model (`hf:OWNER/NAME`), which the app then loads by name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pix2pix._version import __version__
from pix2pix.checkpoint import find_checkpoint, generator_file, read_meta
from pix2pix.errors import UserError
from pix2pix.fileio import check_replaceable, staged_folder
from pix2pix.hub import is_hub_ref
from pix2pix.methods import method_of

GRADIO_VERSION = "6.31.0"  # the Space's sdk_version

APP = '''"""Gradio app for a pix2pix model (written by `pix2pix export --format gradio`)."""

import os

import gradio as gr

import pix2pix

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKPOINT = os.environ.get("PIX2PIX_CHECKPOINT", {checkpoint})
model = pix2pix.load(CHECKPOINT)
HAS_CODE = any(s.name == "z" for s in model.extra_inputs)


def translate(image, seed=0, z_seed=0):
    """An image (PIL) -> its translation (PIL), at its own size."""
    if image is None:
        raise gr.Error("give an input image")
    extra = {{"z": model.sample_z(1, int(z_seed))}} if HAS_CODE else None
    return model.translate(image, seed=int(seed), extra=extra)


inputs = [gr.Image(type="pil", label="input"), gr.Number(0, label="seed", precision=0)]
if HAS_CODE:
    inputs.append(gr.Number(0, label="sample (code seed)", precision=0))
demo = gr.Interface(
    fn=translate,
    inputs=inputs,
    outputs=gr.Image(type="pil", label="translation"),
    title={title!r},
    description={description!r},
    flagging_mode="never",
)

if __name__ == "__main__":
    demo.launch()
'''

README = """---
title: {title}
emoji: 🖼️
colorFrom: gray
colorTo: blue
sdk: gradio
sdk_version: {gradio}
app_file: app.py
pinned: false
license: bsd-3-clause
---

# {title}

{description}

Written by `pix2pix export --format gradio` (pix2pix {version}). Run it locally with
`pip install -r requirements.txt && python app.py`, or push this folder as a Hugging
Face Space. `PIX2PIX_CHECKPOINT` (a folder or hf:OWNER/NAME) overrides the model.
"""


def is_space(path: Path) -> bool:
    return (path / "app.py").is_file() and "pix2pix export --format gradio" in (
        path / "app.py"
    ).read_text(errors="replace")


def export_gradio(
    checkpoint: str | Path, out: str | Path, *, overwrite: bool = False, weights: str = "auto"
) -> Path:
    """Write the Gradio app folder for `checkpoint` as `out` (see the module doc); `out`
    must be new, empty or (with `overwrite`) an earlier Gradio export."""
    out = Path(out)
    check_replaceable(out, "a Gradio export", is_space, overwrite=overwrite)
    hub = is_hub_ref(checkpoint)
    ckpt = find_checkpoint(Path(checkpoint))
    config, _ = read_meta(ckpt)
    m = config.model
    if config.data.color_space == "lab":
        raise UserError(f"{checkpoint}: a Lab colour model; export it with --format onnx")
    title = f"pix2pix {m.method} {m.generator}"
    description = (
        f"{config.data.direction} translation by a {m.method} model ({m.generator}, "
        f"{m.in_channels} -> {m.out_channels} channels); any image size."
    )
    with staged_folder(out) as site:
        if not hub:
            (site / "model").mkdir()
            shutil.copyfile(ckpt / "config.json", site / "model" / "config.json")
            weights_file = generator_file(ckpt, weights, method_of(config).inference)
            shutil.copyfile(weights_file, site / "model" / weights_file.name)
        where = repr(str(checkpoint)) if hub else 'os.path.join(HERE, "model")'
        app = APP.format(checkpoint=where,
                         title=title, description=description)  # fmt: skip
        (site / "app.py").write_text(app)
        (site / "requirements.txt").write_text(
            f"pix2pix=={__version__}\ngradio=={GRADIO_VERSION}\ntorch>=2.5\n"
        )
        readme = README.format(title=title, description=description, gradio=GRADIO_VERSION,
                               version=__version__)  # fmt: skip
        (site / "README.md").write_text(readme)
    return out
