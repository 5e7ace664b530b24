"""The run folder `fit` trains into: what it may hold before a run starts, and the
checks that keep a new run from writing into a user's folder or over another run."""

from __future__ import annotations

from pathlib import Path

from pix2pix.checkpoint import Checkpoint, Progress
from pix2pix.config import RunConfig
from pix2pix.errors import ConfigError, UserError, setting
from pix2pix.lock import LOCK_NAME

# What `fit` writes into a run folder: a new run may start in a folder holding only these
# (left by an earlier start that stopped before its first checkpoint), never in another.
RUN_ENTRIES = {
    *("log.jsonl", "val.jsonl", "samples", "plots", "report.html", "tensorboard", "wandb"),
    *("best", ".best.tmp", ".best.old", ".latest.tmp", LOCK_NAME),
}


def start_in(run_dir: Path, config: RunConfig, checkpoint: Checkpoint | None) -> Progress:
    """Where a run starts in `run_dir`: a new run (`checkpoint` None) only in a folder
    holding nothing but what `fit` writes; a resumed one only with the checkpoint's
    settings. Returns the progress to start from."""
    if checkpoint is None:
        if (run_dir / "latest").exists() or (run_dir / ".latest.old").exists():
            raise UserError(
                f"{run_dir} already holds a checkpoint; pass {setting('--resume')} to continue it "
                f"or choose another {setting('--out')}"
            )
        entries = run_dir.iterdir() if run_dir.is_dir() else ()  # ranks > 0 may be first
        foreign = sorted(p.name for p in entries if p.name not in RUN_ENTRIES)
        if foreign:
            raise UserError(
                f"{run_dir}: is not empty and is not a pix2pix run (it holds "
                f"{', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                f"nothing was changed. Choose a new or empty {setting('--out')} folder"
            )
        return Progress()
    diffs = checkpoint.config.differences(config)
    if diffs:
        raise ConfigError(
            f"{checkpoint.path}: resuming with different settings: {'; '.join(diffs)}; "
            f"drop those flags (or those settings of {setting('--config')}) to continue the run as "
            "it was"
        )
    return checkpoint.progress
