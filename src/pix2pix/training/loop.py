"""The training loop (`fit`): data, checkpoints, logs and samples around the paper's step.

The step itself (G forward, D step, G step) is `training.step.Pix2PixTrainer`. Under
torchrun every rank runs this loop on its share of each global batch
(`training.distributed`); rank 0 alone writes the log, samples and checkpoints.
"""

from __future__ import annotations

import logging
import math
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
    load_training_state,
    load_weights,
    open_checkpoint,
    save_checkpoint,
)
from pix2pix.config import RunConfig
from pix2pix.data.datasets import PairedDataset, resolve_format
from pix2pix.data.encoding import display_batch
from pix2pix.data.holdout import split_holdout
from pix2pix.data.images import save_image
from pix2pix.data.sampler import EpochBatchSampler
from pix2pix.errors import ConfigError, UserError
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
from pix2pix.training.monitor import NullMonitor, RunMonitor
from pix2pix.training.runlog import NullLog, RunLog
from pix2pix.training.step import Pix2PixTrainer

log = logging.getLogger(__name__)


def _workers(requested: int) -> int:
    return min(8, (os.cpu_count() or 2) // 2) if requested < 0 else requested


# What `fit` writes into a run folder: a new run may start in a folder holding only these
# (left by an earlier start that stopped before its first checkpoint), never in another.
RUN_ENTRIES = {"log.jsonl", "val.jsonl", "samples", "plots", "report.html", "tensorboard",
               "best", ".best.tmp", ".best.old", ".latest.tmp", LOCK_NAME}  # fmt: skip


def _start(config: RunConfig, run_dir: Path, checkpoint: Checkpoint | None) -> Progress:
    """Check the run folder against the checkpoint to resume (None: a new run)."""
    if checkpoint is None:
        if (run_dir / "latest").exists() or (run_dir / ".latest.old").exists():
            raise UserError(
                f"{run_dir} already holds a checkpoint; pass --resume to continue it "
                "or choose another --out"
            )
        entries = run_dir.iterdir() if run_dir.is_dir() else ()  # ranks > 0 may be first
        foreign = sorted(p.name for p in entries if p.name not in RUN_ENTRIES)
        if foreign:
            raise UserError(
                f"{run_dir}: is not empty and is not a pix2pix run (it holds "
                f"{', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                "nothing was changed. Choose a new or empty --out folder"
            )
        return Progress()
    diffs = checkpoint.config.differences(config)
    if diffs:
        raise ConfigError(
            f"{checkpoint.path}: resuming with different settings: {'; '.join(diffs)}; "
            "drop those flags (or those settings of --config) to continue the run as it was"
        )
    return checkpoint.progress


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
        raise UserError(f"{run_dir}: is a file, not a run folder; choose another --out")
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
    progress = _start(config, run_dir, checkpoint)
    ckpt = checkpoint.path if checkpoint is not None else None
    t = config.train
    device = train_device(resolve_device(t.device), ctx)
    speed = resolve_speed(device, "train", t.precision, t.channels_last, t.compile)
    dataset = PairedDataset(
        config.data, config.model.in_channels, config.model.out_channels, seed=t.seed
    )
    dataset, val_pairs = split_holdout(dataset, config)  # unchanged without --val-fraction
    if t.batch_size > 1 and len(dataset.output_sizes()) > 1:
        raise UserError(
            f"{dataset.root}: images differ in size after --preprocess {config.data.preprocess}; "
            "use --batch-size 1 or a preprocess that crops"
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
        trainer = Pix2PixTrainer(config, device, speed, ctx)
        if ctx.enabled:  # but each rank its own dropout noise
            torch.manual_seed(rank_seed(t.seed, ctx.rank, progress.step))
            log.info("%d processes, global batch %d", ctx.world_size, ctx.world_size * t.batch_size)
        if ckpt is not None:  # a damaged checkpoint fails here, before anything is logged
            load_weights(trainer.g, ckpt / "generator.safetensors")
            load_weights(trainer.d, ckpt / "discriminator.safetensors")
            trainer.load_state_dict(load_training_state(ckpt))
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
    trainer: Pix2PixTrainer,
    loader: DataLoader,
    sampler: EpochBatchSampler,
    config: RunConfig,
    run_dir: Path,
    progress: Progress,
    should_stop: Callable[[], bool] | None,
    monitor: RunMonitor | NullMonitor,
) -> Path:
    t = config.train
    ctx = trainer.ctx
    latest = run_dir / "latest"
    per_epoch = len(sampler)
    total = t.total_epochs * per_epoch
    if t.max_steps:
        total = min(total, t.max_steps)
    step, epoch, batch_in_epoch = progress.step, progress.epoch, progress.batch_in_epoch

    def save(path: Path) -> Path:
        """Called on every rank (gathering the RNG states is a collective); rank 0 writes."""
        training_state = trainer.state_dict()
        check_in_sync({"generator": trainer.g, "discriminator": trainer.d}, ctx)
        if ctx.is_main:
            state = Progress(step, epoch, batch_in_epoch, ctx.world_size)
            save_checkpoint(
                path, config, state, trainer.g, trainer.d, training_state, monitor.metadata()
            )
        return path

    def at_max_steps() -> bool:
        return bool(t.max_steps) and step >= t.max_steps

    def stopped(why: str = "--max-steps reached") -> Path:
        log.info("%s at step %d; continue with --resume", why, step)
        return latest

    if at_max_steps() or epoch >= t.total_epochs:
        log.info("%s: nothing to do, the run is at step %d of %d", run_dir, step, total)
        return latest if latest.exists() else save(latest)

    runlog = RunLog(run_dir / "log.jsonl", resume_step=step) if ctx.is_main else NullLog()
    bar = tqdm(
        total=total,
        initial=step,
        unit="step",
        disable=not (t.progress and ctx.is_main) or None,  # None: only on a terminal
        dynamic_ncols=True,
    )
    running: dict[str, float] = {}
    try:
        while epoch < t.total_epochs:
            sampler.set_epoch(epoch, skip_batches=batch_in_epoch)
            trainer.set_epoch(epoch)
            epoch_start = time.perf_counter()
            tick = time.perf_counter()
            for batch in loader:
                real_a = trainer.to_device(batch["input"])
                real_b = trainer.to_device(batch["target"])
                losses, fake = trainer.step(real_a, real_b)
                step += 1
                batch_in_epoch += 1
                # the global batch's losses, and whether any rank was asked to stop
                values, stop_requested = agree(losses, bool(should_stop and should_stop()), ctx)
                now = time.perf_counter()
                record = {
                    "step": step,
                    "epoch": epoch + 1,
                    "lr": trainer.lr,
                    **values,
                    "sec": round(now - tick, 5),
                }
                runlog.write(record)
                monitor.after_step(
                    trainer, Progress(step, epoch, batch_in_epoch, ctx.world_size), record
                )
                tick = time.perf_counter()  # validation time is not the next step's
                running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in values.items()}
                bar.update(1)
                bar.set_postfix(
                    D=f"{running['loss_d']:.3f}",
                    G=f"{running['loss_g_gan']:.3f}",
                    L1=f"{running['loss_g_l1']:.4f}",
                    refresh=False,
                )
                if t.sample_every and step % t.sample_every == 0 and ctx.is_main:
                    grid = batch_grid(*display_batch(config.data.color_space, real_a, fake, real_b))
                    save_image(grid, run_dir / "samples" / f"step_{step:08d}.png")
                # --max-steps on an epoch's last batch stops after the epoch's end below
                mid_epoch = batch_in_epoch < per_epoch
                stop = (at_max_steps() and mid_epoch) or stop_requested
                if stop or (t.save_every and step % t.save_every == 0):
                    save(latest)
                if stop:
                    return stopped("stop requested") if stop_requested else stopped()
            # end of epoch: checkpoint the boundary
            epoch += 1
            batch_in_epoch = 0
            save(latest)
            if t.keep_every and epoch % t.keep_every == 0:
                save(run_dir / f"epoch_{epoch:04d}")
            log.info(
                "epoch %d/%d: D %.3f  G_GAN %.3f  L1 %.4f  lr %.2e  (%.1f s)",
                epoch,
                t.total_epochs,
                running.get("loss_d", math.nan),
                running.get("loss_g_gan", math.nan),
                running.get("loss_g_l1", math.nan),
                trainer.lr,
                time.perf_counter() - epoch_start,
            )
            if at_max_steps() and epoch < t.total_epochs:
                return stopped()
        return latest
    finally:
        bar.close()
        runlog.close()
