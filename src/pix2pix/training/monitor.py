"""Everything a run reports beside training: validation, best/, curves, TensorBoard, W&B.

`RunMonitor` is called by the training loop after each step. It validates when due
(`pix2pix.training.validation`), appends the scores to RUN_DIR/val.jsonl, keeps RUN_DIR/best/
(config + generator of the best step on --val-metric), logs scalars for TensorBoard with
--tensorboard, and writes the curves and RUN_DIR/report.html (`pix2pix.training.report`) when the
run ends. Its state (the best score) travels in each checkpoint's metadata, so a resumed
run keeps following the same best.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.config import RunConfig
from pix2pix.data.pairs.folders import PairFiles
from pix2pix.errors import ConfigError, setting
from pix2pix.methods import method_of
from pix2pix.training.report import write_run_report
from pix2pix.training.runlog import RunLog
from pix2pix.training.trainer import Trainer
from pix2pix.training.validation import Validator
from pix2pix.training.wandb_log import WandbLogger

log = logging.getLogger(__name__)

REPORT_EVERY_S = 300.0  # refresh the curves after a validation at most this often


def _summary_writer() -> Any:
    """torch's SummaryWriter class; a ConfigError naming the extra when not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            f"{setting('--tensorboard')} needs the tensorboard package: pip install "
            "'pix2pix[tensorboard]'"
        ) from None
    return SummaryWriter


class RunMonitor:
    """Validation, best/ and logging around the training loop of one run."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        per_epoch: int,
        val_pairs: list[PairFiles],
        resume_step: int = 0,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.per_epoch = per_epoch
        self.total = config.train.total_epochs * per_epoch
        # everything that can refuse (a missing extra, bad held-out data) before any file
        writer = _summary_writer() if config.monitor.tensorboard else None
        self.validator = Validator(config, val_pairs) if val_pairs else None
        self.tb = None
        project = config.monitor.wandb
        self.wandb = WandbLogger(project, self.run_dir, config) if project else None
        if writer is not None:  # a resumed run hides the events logged after its checkpoint
            purge = resume_step + 1 if resume_step else None
            self.tb = writer(str(self.run_dir / "tensorboard"), purge_step=purge)
        self.vallog = (
            RunLog(self.run_dir / "val.jsonl", resume_step) if self.validator is not None else None
        )
        self._last_report = time.monotonic()
        if self.validator is not None:
            log.info(
                "validating on %d held-out pair(s); best/ follows %s",
                len(self.validator),
                self.validator.metric,
            )

    def metadata(self) -> dict[str, Any]:
        """State for the checkpoint (the best validation score)."""
        return {"validation": self.validator.state()} if self.validator else {}

    def load_state(self, metadata: dict[str, Any]) -> None:
        if self.validator is not None:
            self.validator.load_state(metadata.get("validation", {}))

    def after_step(self, trainer: Trainer, progress: Progress, record: dict[str, float]) -> None:
        """Log the step's record; validate (and refresh best/) when due."""
        scalars = {f"train/{k}": v for k, v in record.items() if k not in ("step", "epoch")}
        if self.tb is not None:
            for key, value in scalars.items():
                self.tb.add_scalar(key, value, progress.step)
        if self.wandb is not None:
            self.wandb.log(scalars, progress.step)
        v = self.validator
        end_of_epoch = progress.batch_in_epoch == self.per_epoch
        if v is None or not v.due(progress.step, end_of_epoch, progress.step == self.total):
            return
        start = time.perf_counter()
        g = trainer.g_infer  # the EMA average when there is one
        if self.config.train.sync_bn:  # SyncBatchNorm would wait for the other ranks
            g = method_of(self.config).inference_module(self.config, init=False)
            g = g.to(trainer.device)
            g.load_state_dict(trainer.g_infer.state_dict())
        metrics = v.evaluate(g, trainer.stride, trainer.device, trainer.speed.precision)
        best = v.improved(metrics)
        if best:
            v.best = {"metric": v.metric, "value": metrics[v.metric], "step": progress.step}
            inference = trainer.method.inference  # with its average, not the other modules
            kept = {
                k: m for k, m in trainer.modules.items() if k in (inference, f"{inference}_ema")
            }
            save_checkpoint(
                self.run_dir / "best",
                self.config,
                progress,
                kept,
                metadata={"validation": {"metrics": metrics, **v.state()}},
            )
        seconds = time.perf_counter() - start
        assert self.vallog is not None
        self.vallog.write(
            {
                "step": progress.step,
                "epoch": progress.epoch + 1,
                **metrics,
                "best": best,
                "sec": round(seconds, 3),
            }
        )
        if self.tb is not None:
            for key, value in metrics.items():
                self.tb.add_scalar(f"val/{key}", value, progress.step)
        if self.wandb is not None:
            self.wandb.log({f"val/{k}": v for k, v in metrics.items()}, progress.step)
        shown = "  ".join(f"{k} {val:.4g}" for k, val in metrics.items())
        log.info(
            "step %d validation: %s%s (%.1f s)",
            progress.step,
            shown,
            "  -> best/" if best else "",
            seconds,
        )
        if time.monotonic() - self._last_report > REPORT_EVERY_S:
            self.report()

    def sample(self, path: Path, step: int) -> None:
        """A sample grid was written to `path`."""
        if self.wandb is not None:
            self.wandb.image(path, step)

    def report(self) -> Path | None:
        """Write the curves and report.html (with --report); a failure is logged, never raised."""
        self._last_report = time.monotonic()
        if not self.config.monitor.report:
            return None
        try:
            return write_run_report(self.run_dir)
        except Exception as exc:  # a report must never end a training run
            log.warning("run report not written: %s", exc)
            return None

    def close(self) -> None:
        if self.vallog is not None:
            self.vallog.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.close()
        if (self.run_dir / "log.jsonl").exists():
            self.report()


class NullMonitor:
    """The monitor of ranks other than 0 in a multi-process run: does nothing."""

    def metadata(self) -> dict[str, Any]:
        return {}

    def load_state(self, metadata: dict[str, Any]) -> None:
        pass

    def after_step(self, trainer: Trainer, progress: Progress, record: dict[str, float]) -> None:
        pass

    def sample(self, path: Path, step: int) -> None:
        pass

    def close(self) -> None:
        pass
