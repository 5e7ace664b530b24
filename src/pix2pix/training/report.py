"""Training curves (PNG, with matplotlib when installed) and the run's HTML report.

`write_run_report(run_dir)` reads RUN_DIR/log.jsonl (and val.jsonl) and writes
RUN_DIR/plots/losses.png, RUN_DIR/plots/validation.png and RUN_DIR/report.html: the
curves, the validation table with the best step, and the newest sample grids.
matplotlib is an optional extra (`pix2pix[plots]`): without it the page has the tables
and samples, and one log line says how to get the curves.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pix2pix.html import (
    heading_html,
    image_html,
    paragraph_html,
    table_html,
    write_page,
)
from pix2pix.training.runlog import read_log

log = logging.getLogger(__name__)

LOSS_KEYS = ("loss_d", "loss_g_gan", "loss_g_l1", "lr")
MAX_POINTS = 1000  # long runs are averaged into at most this many points per curve
PLOTS_INSTALL = "pip install 'pix2pix[plots]'"


def binned(steps: np.ndarray, values: np.ndarray, points: int = MAX_POINTS) -> tuple:
    """Average consecutive records so that at most `points` remain: (steps, values)."""
    if len(steps) <= points:
        return steps, values
    edges = np.linspace(0, len(steps), points + 1).astype(int)
    mids = [steps[a:b].mean() for a, b in itertools.pairwise(edges)]
    means = [values[a:b].mean() for a, b in itertools.pairwise(edges)]
    return np.array(mids), np.array(means)


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (fewer at the start)."""
    sums = np.concatenate([[0.0], np.cumsum(values)])  # sums[i] = values[:i].sum()
    end = np.arange(1, len(values) + 1)
    counts = np.minimum(end, window)
    return (sums[end] - sums[end - counts]) / counts


def _series(records: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    if not rows:
        return np.zeros(0), np.zeros(0)
    steps, values = np.array(rows, dtype=np.float64).T
    return steps, values


def plot_curves(
    records: list[dict[str, Any]], keys: list[str], path: Path, title: str, smooth: bool
) -> Path:
    """One small panel per key (value against step), saved as a PNG at `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # the object API: no global backend or pyplot state

    cols = min(len(keys), 3)
    rows = -(-len(keys) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows), dpi=100)
    FigureCanvasAgg(fig)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        steps, values = _series(records, key)
        if smooth:
            steps, values = binned(steps, values)
            noisy = key != "lr"  # the learning rate is exact: no smoothed line
            ax.plot(steps, values, linewidth=0.8 if noisy else 1.2, alpha=0.35 if noisy else 1)
            if noisy:
                ax.plot(steps, rolling_mean(values, max(1, len(values) // 40)), color="C0")
        else:
            ax.plot(steps, values, marker="o", markersize=3, linewidth=1.2)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)
    return path


def _validation_table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[object]]]:
    keys = [k for k in records[-1] if k not in ("step", "epoch", "best", "sec")]
    headers = ["step", "epoch", *keys, "new best"]
    rows = [[r["step"], r.get("epoch"), *(r.get(k) for k in keys), r.get("best")] for r in records]
    return headers, rows


def write_run_report(run_dir: str | Path, samples: int = 3) -> Path:
    """Write the curves and RUN_DIR/report.html from the run's logs; returns the page."""
    run_dir = Path(run_dir)
    records = read_log(run_dir / "log.jsonl") if (run_dir / "log.jsonl").exists() else []
    warnings = [r for r in records if "warning" in r]  # the health diagnostics'
    records = [r for r in records if "warning" not in r]
    val_file = run_dir / "val.jsonl"
    val = read_log(val_file) if val_file.exists() else []
    parts = [paragraph_html(f"{len(records)} training steps logged in {run_dir}.")]
    parts += [paragraph_html(f"Warning at step {w['step']}: {w['message']}") for w in warnings]
    if importlib.util.find_spec("matplotlib") is None:
        log.info("curves skipped: matplotlib is not installed (%s)", PLOTS_INSTALL)
        parts.append(paragraph_html(f"Curves need matplotlib: {PLOTS_INSTALL}"))
    else:
        if records:
            keys = [k for k in LOSS_KEYS if k in records[-1]]
            plot_curves(records, keys, run_dir / "plots" / "losses.png", "training", smooth=True)
            parts += [heading_html("Training losses"), image_html("plots/losses.png", "losses")]
        if val:
            keys = [k for k in val[-1] if k not in ("step", "epoch", "best", "sec")]
            plot_curves(val, keys, run_dir / "plots" / "validation.png", "validation", False)
            parts += [heading_html("Validation"), image_html("plots/validation.png", "validation")]
    if val:
        best = [r for r in val if r.get("best")]
        if best:
            parts.append(paragraph_html(f"best/ holds the model of step {best[-1]['step']}."))
        headers, rows = _validation_table(val)
        parts.append(table_html(headers, rows[-50:]))
    grids = sorted((run_dir / "samples").glob("step_*.png"))[-samples:]
    if grids:
        parts.append(heading_html("Latest samples (input | output | target)"))
        parts += [image_html(p.relative_to(run_dir).as_posix(), p.stem, "sample") for p in grids]
    return write_page(run_dir / "report.html", f"pix2pix run: {run_dir.name}", parts)
