"""`pix2pix evaluate`: translate a test split and score it the ways papers do.

For every pair of the split (in the model's direction, at the evaluation size of
`pix2pix.evaluation.pairs`) the model's output is compared with the target: L1, MSE, PSNR, SSIM,
MS-SSIM (`pix2pix.evaluation.metrics`), on [0, 1] images: the output as its file holds it (rounded
to the checkpoint's output depth: 8 or 16 bits, or float) against the target normalised
from its own depth, every channel averaged. Lab colorization models are scored on the
RGB image of (input L*, predicted a*b*) against the RGB target photo. Optionally:

- FID and KID between the outputs and the targets (`pix2pix.evaluation.fid`; skipped with one log
  line when the Inception weights are not installed, or when the outputs have other than
  1 or 3 channels);
- FCN-scores (`pix2pix.segmentation`): a segmenter trained on real photos segments each
  output and each real target; both are scored against the model's input label map.

Writes into the report folder: `outputs/<name>.png` (every output, as `pix2pix
translate` writes it: `.tif` for other than 1 or 3 channels), `metrics.csv` (one row per
image), `metrics.json` (means and dataset-level scores), `index.html` with the tables and
input | output | target rows for the best, worst and random pairs by L1 (8-bit previews
in `images/`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pix2pix.checkpoint import find_checkpoint, read_meta
from pix2pix.config import EvalConfig
from pix2pix.data.files import formats
from pix2pix.data.files.encoding import output_array
from pix2pix.data.files.images import save_image
from pix2pix.data.pairs.folders import PairFiles, find_pairs
from pix2pix.errors import UserError
from pix2pix.evaluation.diversity import Diversity, sample_codes
from pix2pix.evaluation.fcn import FcnScores
from pix2pix.evaluation.fid import FeatureExtractor, find_inception, kid
from pix2pix.evaluation.fid import fid as fid_score
from pix2pix.evaluation.pairs import (
    eval_shapes,
    load_eval_pair,
    output_channels,
    output_depth,
    output_file_suffix,
    split_folder,
)
from pix2pix.evaluation.report import write_report
from pix2pix.evaluation.scoring import score_pairs
from pix2pix.fileio import check_replaceable, staged_folder
from pix2pix.lock import folder_lock, sibling_lock
from pix2pix.modelcard import append_evaluation
from pix2pix.runtime import COMPILE_MIN_IMAGES
from pix2pix.segmentation import Segmenter
from pix2pix.translate import Pix2Pix

log = logging.getLogger(__name__)

REPORT_FILE = "metrics.json"
FEATURE_BATCH = 16  # outputs buffered before an Inception forward pass


@dataclass
class _Features:
    """Inception features of outputs and targets, extracted in batches of equal size."""

    extractor: FeatureExtractor
    fake: list[np.ndarray] = field(default_factory=list)
    real: list[np.ndarray] = field(default_factory=list)
    pending: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    def add(self, output: torch.Tensor, target: torch.Tensor | None) -> None:
        """An output, and its target (None: already added, for the other samples)."""
        if self.pending and self.pending[0][0].shape != output.shape:
            self.flush()
        self.pending.append((output, target))
        if len(self.pending) >= FEATURE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.fake.append(self.extractor(torch.cat([o for o, _ in self.pending])))
            real = [t for _, t in self.pending if t is not None]
            if real:
                self.real.append(self.extractor(torch.cat(real)))
            self.pending = []

    def scores(self) -> dict[str, Any]:
        self.flush()
        fake, real = np.concatenate(self.fake), np.concatenate(self.real)
        if len(fake) < 2:
            log.warning("FID/KID skipped: they need at least 2 images")
            return {}
        kid_mean, kid_std = kid(fake, real)
        return {"fid": fid_score(fake, real), "kid": {"mean": kid_mean, "std": kid_std}}


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def evaluate(
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    config: EvalConfig | None = None,
    *,
    overwrite: bool = False,
    **settings: Any,
) -> tuple[Path, dict[str, Any]]:
    """Evaluate a checkpoint on a split; returns (report folder, the metrics.json content).

    config: the settings (`EvalConfig`: split, size, eval_mode, seed, fid, segmenter,
    ...); its fields may be given as keywords instead (`evaluate(ck, data, fid=True)`).
    out: report folder (default: CHECKPOINT_PARENT/eval_<checkpoint>_<split>); it must be
    absent or empty, or hold an earlier report and `overwrite` be set. The report is
    written beside it and swapped in complete, so a failed run leaves `out` as it was.
    """
    start = time.perf_counter()
    c = dataclasses.replace(config or EvalConfig(), **settings)
    ckpt = find_checkpoint(Path(checkpoint))
    config, ckpt_progress = read_meta(ckpt)
    root, scored_split = split_folder(data, c.split)
    pairs = find_pairs(root, "auto")
    # fail fast on bad inputs, before any work
    seg = Segmenter.load(c.segmenter, c.device) if c.segmenter else None
    channels, depth = output_channels(config), output_depth(config)
    if channels == 3 and depth == "uint16":
        formats.require_opencv("writing 16-bit colour outputs")
    fid, inception_weights = c.fid, c.inception_weights
    if c.wants_fid and channels not in (1, 3):
        log.warning(
            "FID/KID skipped: Inception features need 1- or 3-channel images, "
            "these outputs have %d",
            channels,
        )
        fid, inception_weights = False, None
    extractor = find_inception(inception_weights, fid)
    model = Pix2Pix.load(ckpt, c.device, precision=c.precision, weights=c.weights)
    if len(pairs) >= COMPILE_MIN_IMAGES:  # compile only the sizes many pairs share
        model.plan_compile(eval_shapes(pairs, config.data, c.size_rule))
    if extractor is not None:
        extractor.net.to(model.device)
        extractor.device = model.device
    if seg is not None and seg.palette is not None and model.in_channels != 3:
        raise UserError(
            f"{c.segmenter}: a colour-coded segmenter needs RGB label maps as the model's input, "
            f"but {ckpt} reads {model.in_channels}-channel images"
        )
    out = Path(out) if out else ckpt.parent / f"eval_{ckpt.name}_{scored_split or root.name}"
    check_replaceable(out, "an evaluation report", is_report, overwrite=overwrite)
    target = out.resolve()  # a link to the folder stays a link: its target is replaced
    target.parent.mkdir(parents=True, exist_ok=True)
    if scored_split is None:  # only now: every input is checked
        log.warning(
            "%s has no %s/ subfolder: scoring its %d pairs, recorded as split null",
            root,
            c.split,
            len(pairs),
        )
    header = {
        "checkpoint": str(ckpt),
        "step": ckpt_progress.step,
        "data": str(root),
        "split": scored_split,  # None: --data is a folder of pairs, not a split of one
    }
    with folder_lock(sibling_lock(target), f"report folder {out}"), staged_folder(target) as tmp:
        summary = _score(model, pairs, tmp, header, c, extractor, seg, start)
        check_replaceable(out, "an evaluation report", is_report, overwrite=overwrite)
    append_evaluation(ckpt, summary, scored_split or root.name)  # on the model card
    return out, summary


def is_report(path: Path) -> bool:
    """Whether the folder `path` holds a report written by `evaluate`."""
    try:
        summary = json.loads((Path(path) / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and {"checkpoint", "mean", "images"} <= set(summary)


def _score(
    model: Pix2Pix,
    pairs: list[PairFiles],
    out: Path,
    header: dict[str, Any],
    c: EvalConfig,
    extractor: FeatureExtractor | None,
    seg: Segmenter | None,
    start: float,
) -> dict[str, Any]:
    """Translate and score every pair, writing the report into `out`; the summary."""
    channels, depth = output_channels(model.config), output_depth(model.config)
    suffix = output_file_suffix(model.config)
    feats = _Features(extractor) if extractor is not None else None
    fcn = FcnScores(seg, model.config.data.direction) if seg is not None else None
    rows: list[dict[str, Any]] = []
    size = c.size_rule
    loaded = (load_eval_pair(pair, model.config, size) for pair in pairs)  # one at a time
    bar = tqdm(total=len(pairs), unit="img", disable=not c.progress or None)
    codes = sample_codes(model, c)
    diversity = Diversity(c.samples, extractor) if c.samples > 1 else None
    scored = score_pairs(
        model, loaded, eval_mode=c.eval_mode, seed=c.seed, codes=codes, samples=c.samples
    )
    for s in scored:
        p, x = s.pair, s.input
        for k, raw in enumerate(s.raws):  # as `translate` writes them
            name = f"{p.name}_{k:02d}" if c.samples > 1 else p.name
            save_image(
                output_array(raw[0], x[0], model.config.data), out / "outputs" / f"{name}{suffix}"
            )
        row: dict[str, Any] = {"name": p.name, "width": x.shape[-1], "height": x.shape[-2]}
        row |= s.metrics
        if fcn is not None:
            row |= fcn.add(pairs[s.index], p, s.output, s.target)
        if feats is not None:
            for k, output in enumerate(s.samples):  # FID/KID over every sample
                feats.add(output, s.target if k == 0 else None)
        if diversity is not None:
            diversity.add(s.samples)
        rows.append(row)
        bar.update()
    bar.close()
    metric_names = [k for k in rows[0] if k not in ("name", "width", "height")]
    summary: dict[str, Any] = {
        **header,
        "images": len(rows),
        "size": size,
        "inference": "eval" if c.eval_mode else "paper",
        "seed": c.seed,
        "outputs": {
            "channels": channels,
            "depth": depth,
            "color_space": model.config.data.color_space,
        },
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in metric_names},
        "std": {k: float(np.std([r[k] for r in rows])) for k in metric_names},
    }
    if feats is not None:
        summary |= feats.scores()
    if codes is not None:
        summary["z_seed"] = c.z_seed
    if diversity is not None:
        summary["diversity"] = diversity.summary()
    if fcn is not None:
        summary["fcn"] = {"segmenter": str(c.segmenter), **fcn.scores()}
    summary["seconds"] = round(time.perf_counter() - start, 2)
    summary = _clean(summary)
    write_report(
        out,
        summary,
        rows,
        pairs_by_name={pp.name: pp for pp in pairs},
        config=model.config,
        size=size,
        samples=c.report_pairs,
        seed=c.seed,
        codes=c.samples,
    )
    return summary
