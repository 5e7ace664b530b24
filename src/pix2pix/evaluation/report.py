"""The files `pix2pix evaluate` leaves: metrics.csv, metrics.json and index.html.

The page shows the mean of each per-image metric, FID/KID and FCN-scores when computed,
then input | output | target rows for the best, worst and a random sample of pairs by
L1 (lower is better). The inputs and targets shown are written to `images/` as 8-bit
PNG previews (`visual.save_preview`: grayscale and RGB as they are, other channel counts
as one gray tile per channel, 16-bit and float scaled to 8 bits); outputs are linked from
`outputs/` when they are 8-bit PNGs, else previewed in `images/` too. Every image the
page links exists beside it and a browser shows it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from pix2pix.config import RunConfig
from pix2pix.data.files.images import read_image
from pix2pix.data.pairs.folders import PairFiles
from pix2pix.evaluation.pairs import (
    SizeRule,
    input_preview,
    load_eval_pair,
    output_depth,
    output_file_suffix,
)
from pix2pix.fileio import atomic_write_text
from pix2pix.html import (
    heading_html,
    image_rows_html,
    paragraph_html,
    save_preview,
    table_html,
    write_page,
)

RANK_BY = "l1"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def pick_rows(
    rows: list[dict[str, Any]], samples: int, seed: int
) -> list[tuple[str, dict[str, Any]]]:
    """(label, row) for the `samples` best, worst and random rows by RANK_BY."""
    order = sorted(range(len(rows)), key=lambda i: rows[i][RANK_BY])
    best = order[: min(samples, -(-len(rows) // 2))]
    worst = [i for i in reversed(order) if i not in set(best)][:samples]
    rest = [i for i in order if i not in set(best) | set(worst)]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(rest, min(samples, len(rest)), replace=False)) if rest else []
    picked = [(f"best {n + 1}", rows[i]) for n, i in enumerate(best)]
    picked += [(f"worst {n + 1}", rows[i]) for n, i in enumerate(worst)]
    picked += [("random", rows[int(i)]) for i in chosen]
    return picked


def _compared(outputs: dict[str, Any] | None) -> str:
    """What the metrics compare, in words."""
    if not outputs:
        return ""
    if outputs["color_space"] == "lab":
        return (
            f" Outputs are the RGB images of (input L*, predicted a*b*) as written "
            f"({outputs['depth']}), compared with the RGB target photos."
        )
    return (
        f" Outputs ({outputs['channels']} channel(s)) as written at {outputs['depth']}, "
        "targets normalised from their own depth; channels averaged."
    )


def _summary_parts(summary: dict[str, Any]) -> list[str]:
    mean, std = summary["mean"], summary["std"]
    parts = [
        paragraph_html(
            f"{summary['images']} pairs of {summary['data']} translated by "
            f"{summary['checkpoint']} (step {summary['step']}), {summary['inference']} "
            f"inference, size {summary['size']}, in {summary['seconds']} s. Metrics on "
            "images scaled to [0, 1]; PSNR and SSIM with data range 1."
            + _compared(summary.get("outputs"))
        ),
        heading_html("Per-image metrics"),
        table_html(["metric", "mean", "std"], [[k, mean[k], std[k]] for k in mean]),
    ]
    if "fid" in summary:
        kid = summary["kid"]
        parts += [
            heading_html("Distribution metrics (Inception-v3 features)"),
            table_html(
                ["metric", "value"],
                [["FID", summary["fid"]], ["KID", kid["mean"]], ["KID std", kid["std"]]],
            ),
        ]
    if "fcn" in summary:
        fcn = summary["fcn"]
        keys = ("pixel_acc", "class_acc", "class_iou")
        parts += [
            heading_html("FCN-scores"),
            paragraph_html(f"Segmenter {fcn['segmenter']}; real photos give the upper bound."),
            table_html(
                ["images", "per-pixel acc.", "per-class acc.", "class IoU"],
                [[name, *(fcn[name][k] for k in keys)] for name in ("generated", "real")],
            ),
            table_html(
                ["class", "IoU generated", "IoU real"],
                [
                    [c, fcn["generated"]["per_class"][c]["iou"], fcn["real"]["per_class"][c]["iou"]]
                    for c in fcn["generated"]["per_class"]
                ],
            ),
        ]
    return parts


def write_report(
    out: Path,
    summary: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    pairs_by_name: dict[str, PairFiles],
    config: RunConfig,
    size: SizeRule,
    samples: int,
    seed: int,
    codes: int = 1,
) -> Path:
    """Write metrics.csv, metrics.json, images/ and index.html into `out`; returns the page."""
    out = Path(out)
    write_csv(out / "metrics.csv", rows)
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    image_rows = []
    suffix = output_file_suffix(config)
    viewable = suffix == ".png" and output_depth(config) == "uint8"  # link the output itself
    for label, row in pick_rows(rows, samples, seed):
        pair = load_eval_pair(pairs_by_name[row["name"]], config, size)
        paths = [
            f"images/{pair.name}_input.png",
            f"outputs/{pair.name}{'_00' if codes > 1 else ''}.png",
            f"images/{pair.name}_target.png",
        ]
        if not viewable:
            paths[1] = f"images/{pair.name}_output.png"
            first = f"{pair.name}{'_00' if codes > 1 else ''}{suffix}"
            save_preview(read_image(out / "outputs" / first), out / paths[1])
        save_preview(input_preview(pair, config), out / paths[0])
        save_preview(pair.target, out / paths[2])
        shown = f"{label}: {pair.name} (L1 {row['l1']:.4f}, SSIM {row['ssim']:.3f})"
        image_rows.append((shown, paths))
    parts = _summary_parts(summary)
    parts += [
        heading_html(f"Best, worst and random pairs by {RANK_BY.upper()}"),
        image_rows_html(["input", "output", "target"], image_rows),
    ]
    if codes > 1 and viewable:  # a row of one pair's samples, for the first pairs
        heads = [f"sample {k}" for k in range(codes)]
        names = [row["name"] for row in rows[: max(samples, 1)]]
        shown = [(n, [f"outputs/{n}_{k:02d}.png" for k in range(codes)]) for n in names]
        parts += [heading_html(f"{codes} samples per input"), image_rows_html(heads, shown)]
    return write_page(out / "index.html", "pix2pix evaluation", parts)
