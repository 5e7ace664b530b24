"""Weights & Biases as an optional logger beside TensorBoard (`--wandb [PROJECT]`).

Logged: every step's losses and learning rate (`train/...`), validation metrics
(`val/...`) and the sample grids (`samples`), at the run's step; the run's config as
the W&B config. The W&B run lives in RUN_DIR/wandb and its id is derived from the run
folder, so a resumed run continues the same W&B run. `WANDB_MODE=offline` writes
everything locally (`wandb sync` uploads it later). Needs the `wandb` extra.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pix2pix.config import RunConfig
from pix2pix.errors import ConfigError, setting


def wandb_module() -> Any:
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            f"{setting('--wandb')} needs the wandb package: pip install 'pix2pix[wandb]'"
        ) from None
    return wandb


class WandbLogger:
    def __init__(self, project: str, run_dir: Path, config: RunConfig) -> None:
        self.wandb = wandb_module()
        run_id = hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
        self.run = self.wandb.init(
            project=project,
            dir=str(run_dir),
            name=Path(run_dir).name,
            id=run_id,
            resume="allow",
            config=config.to_dict(),
        )

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def image(self, path: Path, step: int) -> None:
        self.run.log({"samples": self.wandb.Image(str(path))}, step=step)

    def close(self) -> None:
        self.run.finish()
