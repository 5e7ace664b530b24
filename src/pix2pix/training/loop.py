"""The training loop (`fit`): data, checkpoints, logs and samples around the paper's step.

The step itself is the method's (`pix2pix.methods`, inside `training.trainer.Trainer`). Under
torchrun every rank runs this loop on its share of each global batch
(`training.distributed`); rank 0 alone writes the log, samples and checkpoints.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from pix2pix.checkpoint import (
    TRAINING_FILES,
    Checkpoint,
    Progress,
    find_checkpoint,
    open_checkpoint,
    save_checkpoint,
)
from pix2pix.config import RunConfig
from pix2pix.data.files.encoding import display_batch
from pix2pix.data.files.images import save_image
from pix2pix.data.pairs.datasets import PairedDataset, resolve_format
from pix2pix.data.pairs.holdout import split_holdout
from pix2pix.data.pairs.labels import label_rule
from pix2pix.data.pairs.sampler import EpochBatchSampler
from pix2pix.data.pairs.transforms import size_advice
from pix2pix.errors import UserError, setting
from pix2pix.fileio import first_missing, remove_if_empty
from pix2pix.html import batch_grid
from pix2pix.lock import LOCK_NAME, folder_lock
from pix2pix.runtime import (
    resolve_device,
    resolve_speed,
)
from pix2pix.training.distributed import (
    DistContext,
    agree,
    barrier,
    check_in_sync,
    check_same_start,
    process_group,
    rank_seed,
    resume_progress,
    train_device,
)
from pix2pix.training.finetune import start_from
from pix2pix.training.health import Health
from pix2pix.training.monitor import NullMonitor, RunMonitor
from pix2pix.training.runfolder import start_in
from pix2pix.training.runlog import NullLog, RunLog
from pix2pix.training.trainer import Trainer

log = logging.getLogger(__name__)


def _workers(requested: int) -> int:
    return min(8, (os.cpu_count() or 2) // 2) if requested < 0 else requested


def fit(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    should_stop: Callable[[], bool] | None = None,
    checkpoint: Checkpoint | None = None,
) -> Path:
    """Train into `run_dir` (or continue it with `resume`); returns the last checkpoint.

    `checkpoint`: with `resume`, the run's checkpoint if the caller opened it already
    (`open_checkpoint`; the CLI reads config.json once), else fit opens `run_dir/latest`.

    Writes `run_dir/latest/` every `save_every` steps and at each epoch's end,
    `run_dir/epoch_NNNN/` every `keep_every` epochs, `run_dir/log.jsonl` every step and
    `run_dir/samples/` every `sample_every` steps, and with validation (`config.monitor`)
    `run_dir/val.jsonl` and `run_dir/best/`. `should_stop()` is polled between
    steps (the CLI wires it to SIGINT/SIGTERM): training then saves and returns.
    The global torch RNG is seeded inside and restored on return.

    Under torchrun (RANK, WORLD_SIZE, LOCAL_RANK set) call it on every rank: it joins
    the process group unless the caller did, and `--batch-size` is per rank.
    """
    run_dir = Path(run_dir)
    ctx = DistContext.from_env()
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(
            f"{run_dir}: is a file, not a run folder; choose another {setting('--out')}"
        )
    if resume and checkpoint is None:  # "no such run" before a folder is made for its lock
        checkpoint = open_checkpoint(find_checkpoint(run_dir), TRAINING_FILES)
    if not resume:
        checkpoint = None
    if not ctx.is_main:  # rank 0 holds the run folder's lock for the whole job
        return _fit(config, run_dir, ctx, checkpoint, should_stop)
    made = first_missing(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with folder_lock(run_dir / LOCK_NAME, f"run folder {run_dir}"):
            return _fit(config, run_dir, ctx, checkpoint, should_stop)
    finally:
        if made is not None:
            remove_if_empty(run_dir, made)  # a run that failed before writing anything


def _fit(
    config: RunConfig,
    run_dir: Path,
    ctx: DistContext,
    checkpoint: Checkpoint | None,
    should_stop: Callable[[], bool] | None,
) -> Path:
    config = resolve_format(config)  # channels and output depth from the data
    progress = start_in(run_dir, config, checkpoint)
    ckpt = checkpoint.path if checkpoint is not None else None
    t = config.train
    device = train_device(resolve_device(t.device), ctx)
    speed = resolve_speed(device, "train", t.precision, t.channels_last, t.compile)
    dataset = PairedDataset(
        config.data,
        config.model.in_channels,
        config.model.out_channels,
        seed=t.seed,
        labels=label_rule(config),
    )
    advice = size_advice(dataset.sizes, config.data) if progress.step == 0 else None
    if advice:
        log.warning("%s: %s", dataset.root, advice)
    dataset, val_pairs = split_holdout(dataset, config)  # unchanged without --val-fraction
    if t.batch_size > 1 and len(dataset.output_sizes()) > 1:
        raise UserError(
            f"{dataset.root}: images differ in size after {setting('--preprocess')} "
            f"{config.data.preprocess}; "
            f"use {setting('--batch-size')} 1 or a preprocess that crops"
        )
    if ckpt is not None:
        progress = resume_progress(progress, ctx, t.batch_size, len(dataset))
    sampler = EpochBatchSampler(
        len(dataset), t.batch_size, seed=t.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    # rank 0 alone validates, keeps best/ and reports
    monitor = (
        RunMonitor(config, run_dir, len(sampler), val_pairs, progress.step)
        if ctx.is_main
        else NullMonitor()
    )
    workers = _workers(config.data.workers)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        # keeps DataLoader from drawing its worker seeds from the global RNG (dropout's)
        generator=torch.Generator().manual_seed(t.seed),
    )
    cuda_devices = [device] if device.type == "cuda" else []
    with process_group(ctx, device, t.dist_timeout), torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(t.seed)  # the same initial weights on every rank
        trainer = Trainer(config, device, speed, ctx)
        if ctx.enabled:  # but each rank its own dropout noise
            torch.manual_seed(rank_seed(t.seed, ctx.rank, progress.step))
            log.info("%d processes, global batch %d", ctx.world_size, ctx.world_size * t.batch_size)
        if ckpt is None and t.init_from:
            start_from(trainer, t.init_from)
        if ckpt is not None:  # a damaged checkpoint fails here, before anything is logged
            trainer.load_checkpoint(ckpt, progress.step)
            monitor.load_state(checkpoint.metadata)
            check_same_start(progress.step, ctx, device, str(ckpt))
        log.info("training on %s: %s", device, speed)
        if ckpt is not None:
            log.info("resuming %s at step %d (epoch %d)", ckpt, progress.step, progress.epoch + 1)
        try:
            latest = _loop(
                trainer, loader, sampler, config, run_dir, progress, should_stop, monitor
            )
        finally:
            monitor.close()
        barrier(ctx, device)  # every rank returns once rank 0's checkpoint is on disk
        return latest


def _loop(
    trainer: Trainer,
    loader: DataLoader,
    sampler: EpochBatchSampler,
    config: RunConfig,
    run_dir: Path,
    progress: Progress,
    should_stop: Callable[[], bool] | None,
    monitor: RunMonitor | NullMonitor,
) -> Path:
    run = _Run(trainer, config, run_dir, progress, monitor, len(sampler))
    if run.at_max_steps() or run.epoch >= config.train.total_epochs:
        log.info("%s: nothing to do, the run is at step %d of %d", run_dir, run.step, run.total)
        return run.latest if run.latest.exists() else run.save(run.latest)
    run.open()
    try:
        while run.epoch < config.train.total_epochs:
            sampler.set_epoch(run.epoch, skip_batches=run.batch_in_epoch)
            trainer.set_epoch(run.epoch)
            epoch_start = run.tick = time.perf_counter()
            for batch in loader:
                why = run.step_on(batch, bool(should_stop and should_stop()))
                if why:
                    log.info("%s at step %d; continue with --resume", why, run.step)
                    return run.latest
            run.end_epoch(time.perf_counter() - epoch_start)
            if run.at_max_steps() and run.epoch < config.train.total_epochs:
                log.info("--max-steps reached at step %d; continue with --resume", run.step)
                return run.latest
        return run.latest
    finally:
        run.close()


class _Run:
    """The loop's state between steps: position, logs, the progress bar, checkpoints."""

    def __init__(
        self,
        trainer: Trainer,
        config: RunConfig,
        run_dir: Path,
        progress: Progress,
        monitor: RunMonitor | NullMonitor,
        per_epoch: int,
    ) -> None:
        self.trainer, self.config, self.run_dir, self.monitor = trainer, config, run_dir, monitor
        self.ctx = trainer.ctx
        self.latest = run_dir / "latest"
        self.per_epoch = per_epoch
        t = config.train
        self.total = t.total_epochs * per_epoch
        if t.max_steps:
            self.total = min(self.total, t.max_steps)
        self.step, self.epoch = progress.step, progress.epoch
        self.batch_in_epoch = progress.batch_in_epoch
        self.running: dict[str, float] = {}
        self.health = Health()
        self.tick = time.perf_counter()
        self.runlog: RunLog | NullLog = NullLog()
        self.bar: tqdm | None = None

    def progress(self) -> Progress:
        return Progress(self.step, self.epoch, self.batch_in_epoch, self.ctx.world_size)

    def at_max_steps(self) -> bool:
        return bool(self.config.train.max_steps) and self.step >= self.config.train.max_steps

    def save(self, path: Path) -> Path:
        """Called on every rank (gathering the RNG states is a collective); rank 0 writes."""
        trainer = self.trainer
        training_state = trainer.state_dict()
        check_in_sync(trainer.method.modules, self.ctx)
        if self.ctx.is_main:
            save_checkpoint(
                path,
                self.config,
                self.progress(),
                trainer.modules,
                training_state,
                self.monitor.metadata(),
            )
        return path

    def open(self) -> None:
        t, main = self.config.train, self.ctx.is_main
        if main:
            self.runlog = RunLog(self.run_dir / "log.jsonl", resume_step=self.step)
        self.bar = tqdm(
            total=self.total,
            initial=self.step,
            unit="step",
            disable=not (t.progress and main) or None,  # None: only on a terminal
            dynamic_ncols=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.runlog.close()

    def step_on(self, batch: dict, stop_here: bool) -> str | None:
        """One training step and its bookkeeping; why the run stops now, or None."""
        trainer, t = self.trainer, self.config.train
        real_a, real_b = trainer.to_device(batch["input"]), trainer.to_device(batch["target"])
        losses, fake = trainer.step(real_a, real_b)
        self.step += 1
        self.batch_in_epoch += 1
        # the global batch's losses, and whether any rank was asked to stop
        values, stop_requested = agree(losses, stop_here, self.ctx)
        record = {
            "step": self.step,
            "epoch": self.epoch + 1,
            "lr": trainer.lr,
            **values,
            "sec": round(time.perf_counter() - self.tick, 5),
        }
        self.runlog.write(record)
        self.health.check(record, fake, real_b, self.runlog)
        self.monitor.after_step(trainer, self.progress(), record)
        self.tick = time.perf_counter()  # validation time is not the next step's
        self._show(values)
        if t.sample_every and self.step % t.sample_every == 0 and self.ctx.is_main:
            shown = display_batch(self.config.data.color_space, real_a, fake, real_b)
            grid = self.run_dir / "samples" / f"step_{self.step:08d}.png"
            save_image(batch_grid(*shown), grid)
            self.monitor.sample(grid, self.step)
        # --max-steps on an epoch's last batch stops after the epoch's end instead
        mid_epoch = self.batch_in_epoch < self.per_epoch
        stop = (self.at_max_steps() and mid_epoch) or stop_requested
        if stop or (t.save_every and self.step % t.save_every == 0):
            self.save(self.latest)
        if not stop:
            return None
        return "stop requested" if stop_requested else "--max-steps reached"

    def _show(self, values: dict[str, float]) -> None:
        running = {k: 0.9 * self.running.get(k, v) + 0.1 * v for k, v in values.items()}
        self.running = running
        assert self.bar is not None
        self.bar.update(1)
        self.bar.set_postfix(_short(running), refresh=False)

    def end_epoch(self, seconds: float) -> None:
        """Checkpoint the epoch boundary (and keep epoch_NNNN/ when due) and log it."""
        t = self.config.train
        self.epoch += 1
        self.batch_in_epoch = 0
        self.save(self.latest)
        if t.keep_every and self.epoch % t.keep_every == 0:
            self.save(self.run_dir / f"epoch_{self.epoch:04d}")
        shown = "  ".join(f"{k} {v}" for k, v in _short(self.running).items())
        at = f"epoch {self.epoch}/{t.total_epochs}"
        log.info("%s: %s  lr %.2e  (%.1f s)", at, shown, self.trainer.lr, seconds)


SHORT_NAMES = {"loss_d": "D", "loss_g_gan": "G_GAN", "loss_g_l1": "L1"}  # for a glance


def _short(running: dict[str, float]) -> dict[str, str]:
    """The bar's losses: D, G_GAN and L1 where the method logs them, else all its losses."""
    named = {SHORT_NAMES[k]: f"{v:.4f}" for k, v in running.items() if k in SHORT_NAMES}
    return named or {k: f"{v:.4f}" for k, v in running.items() if k.startswith("loss")}
