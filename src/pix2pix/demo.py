"""`pix2pix demo`: the whole job on built-in data, no download needed.

Writes a synthetic labels -> rendering dataset, trains a small U-Net on it, translates the
held-out scenes and writes an HTML page (input | output | target). Running it again
reuses what is there: an unfinished run resumes, a finished one is only re-translated.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pix2pix.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from pix2pix.data.files.images import save_image, to_tensor, to_uint8
from pix2pix.data.pairs.datasets import load_pair
from pix2pix.data.pairs.folders import find_pairs
from pix2pix.data.tools.synthetic import label_palette, write_dataset
from pix2pix.errors import ConfigError, UserError, setting
from pix2pix.html import image_grid, write_image_table
from pix2pix.training.loop import fit
from pix2pix.translate import Pix2Pix

log = logging.getLogger(__name__)

SIZES = tuple(2**d for d in range(5, 11))


def demo_config(
    data_root: Path,
    size: int,
    steps: int,
    train_images: int,
    batch_size: int,
    seed: int,
    device: str,
) -> RunConfig:
    """A small U-Net for `size` x `size` scenes, `steps` steps, LR decaying over the second
    half, with the improved recipe (`--recipe improved`: no checkerboard on the page; the
    paper's recipe stays `train`'s default)."""
    if size not in SIZES:
        raise ConfigError(
            f"{setting('--size')} {size} is not valid; choose one of: {', '.join(map(str, SIZES))}"
        )
    per_epoch = math.ceil(train_images / batch_size)
    epochs = max(2, math.ceil(steps / per_epoch))
    return RunConfig(
        model=ModelConfig(generator=f"unet_{size}", ngf=32, ndf=32, in_channels=3, out_channels=3),
        data=DataConfig(
            root=str(data_root),
            split="train",
            preprocess="none",
            palette=label_palette(),  # `pix2pix serve` draws with the label colours
            workers=0,
        ),
        train=TrainConfig(
            epochs=epochs - epochs // 2,
            decay_epochs=epochs // 2,
            batch_size=batch_size,
            seed=seed,
            device=device,
            max_steps=steps,
            sample_every=max(1, steps // 10),
            save_every=max(1, steps // 10),
            keep_every=0,
            recipe="improved",
        ),
    )


DEMO_ENTRIES = {"data", "run", "results"}  # what run_demo writes into its folder


def run_demo(
    out_dir: str | Path = "runs/demo",
    *,
    size: int = 64,
    steps: int = 3000,
    train_images: int = 200,
    test_images: int = 16,
    batch_size: int = 4,
    seed: int = 0,
    device: str = "auto",
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Train and show the demo model; returns the path of the HTML page.

    `out_dir` must be absent, empty or an earlier demo folder (re-running resumes the run
    and reuses the data); a folder holding anything else is refused, untouched.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file; {setting('--out')} takes a folder for the demo")
    entries = out.iterdir() if out.is_dir() else ()
    foreign = sorted(p.name for p in entries if p.name not in DEMO_ENTRIES)
    if foreign:
        raise UserError(
            f"{out}: is not empty and is not a demo folder (it holds {', '.join(foreign[:3])}); "
            f"nothing was changed. Choose a new or empty {setting('--out')} folder"
        )
    data = write_dataset(out / "data", size, train_images, test_images, seed)
    config = demo_config(data, size, steps, train_images, batch_size, seed, device)
    run = out / "run"
    resume = (run / "latest").exists() or (run / ".latest.old").exists()
    fit(config, run, resume=resume, should_stop=should_stop)

    model = Pix2Pix.load(run, device=device)
    results = out / "results"
    rows, grid_rows, errors, baseline = [], [], [], []
    pairs = find_pairs(data / "test")
    mean_target = np.mean([load_pair(p, 3, 3)[1] for p in find_pairs(data / "train")], axis=0)
    for pair in pairs:
        a, b = load_pair(pair, 3, 3)
        y = model.translate_tensor(to_tensor(a)[None], seed=seed)
        fake = to_uint8(y[0])
        paths = [
            results / "images" / f"{pair.name}_{kind}.png" for kind in ("input", "output", "target")
        ]
        for path, img in zip(paths, (a, fake, b)):
            save_image(img, path)
        rows.append((pair.name, paths))
        grid_rows.append([a, fake, b])
        errors.append(np.abs(fake.astype(np.float32) - b).mean() / 255)
        baseline.append(np.abs(mean_target - b).mean() / 255)
    save_image(image_grid(grid_rows[:6]), results / "grid.png")
    notes = [
        f"pix2pix demo: {config.model.generator} (ngf {config.model.ngf}) trained for "
        f"{steps} steps on {train_images} synthetic label maps -> renderings; these "
        f"{len(pairs)} test scenes were never seen in training.",
        f"Mean L1 error (0-1 scale): {np.mean(errors):.4f}; predicting the average "
        f"training image instead would give {np.mean(baseline):.4f}.",
    ]
    page = write_image_table(
        results / "index.html", "pix2pix demo", ["input (labels)", "output", "target"], rows, notes
    )
    log.info("mean L1 %.4f (average-image baseline %.4f)", np.mean(errors), np.mean(baseline))
    return page
