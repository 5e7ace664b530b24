"""The training loop (`fit`): data, checkpoints, logs and samples around the paper's step.

The step itself (G forward, D step, G step) is `pix2pix.trainer.Pix2PixTrainer`.
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
    Progress,
    find_checkpoint,
    load_training_state,
    load_weights,
    read_meta,
    read_metadata,
    save_checkpoint,
)
from pix2pix.config import RunConfig
from pix2pix.data.datasets import PairedDataset, detect_channels, find_pairs, resolve_root
from pix2pix.data.images import save_image
from pix2pix.data.sampler import EpochBatchSampler
from pix2pix.errors import ConfigError, UserError
from pix2pix.monitor import RunMonitor
from pix2pix.runlog import RunLog
from pix2pix.runtime import (
    resolve_device,
    resolve_speed,
)
from pix2pix.trainer import Pix2PixTrainer
from pix2pix.validation import split_holdout
from pix2pix.visual import batch_grid

log = logging.getLogger(__name__)


def resolve_channels(config: RunConfig) -> RunConfig:
    """Fill in unset input/output channel counts from the dataset's first pair."""
    m = config.model
    if m.in_channels is not None and m.out_channels is not None:
        return config
    pairs = find_pairs(resolve_root(config.data), config.data.layout)
    c_in, c_out = detect_channels(pairs, config.data.direction)
    return config.replace(
        model={"in_channels": m.in_channels or c_in, "out_channels": m.out_channels or c_out}
    )


def _workers(requested: int) -> int:
    return min(8, (os.cpu_count() or 2) // 2) if requested < 0 else requested


def _start(
    config: RunConfig, run_dir: Path, resume: bool
) -> tuple[RunConfig, Progress, Path | None]:
    """Check the run folder against `resume`; for a resume, the config to continue with."""
    if not resume:
        if (run_dir / "latest").exists() or (run_dir / ".latest.old").exists():
            raise UserError(
                f"{run_dir} already holds a checkpoint; pass --resume to continue it "
                "or choose another --out"
            )
        return config, Progress(), None
    ckpt = find_checkpoint(run_dir)
    saved, progress = read_meta(ckpt, TRAINING_FILES)
    diffs = saved.differences(config)
    if diffs:
        raise ConfigError(
            f"{ckpt}: resuming with different settings: {'; '.join(diffs)}; "
            "drop those flags to continue the run as it was"
        )
    return config, progress, ckpt


def fit(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Train into `run_dir` (or continue it with `resume`); returns the last checkpoint.

    Writes `run_dir/latest/` every `save_every` steps and at each epoch's end,
    `run_dir/epoch_NNNN/` every `keep_every` epochs, `run_dir/log.jsonl` every step and
    `run_dir/samples/` every `sample_every` steps, and with validation (`config.monitor`)
    `run_dir/val.jsonl` and `run_dir/best/`. `should_stop()` is polled between
    steps (the CLI wires it to SIGINT/SIGTERM): training then saves and returns.
    The global torch RNG is seeded inside and restored on return.
    """
    run_dir = Path(run_dir)
    config = resolve_channels(config)
    config, progress, ckpt = _start(config, run_dir, resume)
    t = config.train
    device = resolve_device(t.device)
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
    sampler = EpochBatchSampler(len(dataset), t.batch_size, seed=t.seed)
    monitor = RunMonitor(config, run_dir, len(sampler), val_pairs, progress.step)
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
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(t.seed)
        trainer = Pix2PixTrainer(config, device, speed)
        log.info("training on %s: %s", device, speed)
        if ckpt is not None:
            load_weights(trainer.g, ckpt / "generator.safetensors")
            load_weights(trainer.d, ckpt / "discriminator.safetensors")
            trainer.load_state_dict(load_training_state(ckpt))
            monitor.load_state(read_metadata(ckpt))
            log.info("resuming %s at step %d (epoch %d)", ckpt, progress.step, progress.epoch + 1)
        try:
            return _loop(trainer, loader, sampler, config, run_dir, progress, should_stop, monitor)
        finally:
            monitor.close()


def _loop(
    trainer: Pix2PixTrainer,
    loader: DataLoader,
    sampler: EpochBatchSampler,
    config: RunConfig,
    run_dir: Path,
    progress: Progress,
    should_stop: Callable[[], bool] | None,
    monitor: RunMonitor,
) -> Path:
    t = config.train
    latest = run_dir / "latest"
    per_epoch = len(sampler)
    total = t.total_epochs * per_epoch
    if t.max_steps:
        total = min(total, t.max_steps)
    step, epoch, batch_in_epoch = progress.step, progress.epoch, progress.batch_in_epoch

    def save(path: Path) -> Path:
        state = Progress(step, epoch, batch_in_epoch)
        return save_checkpoint(
            path, config, state, trainer.g, trainer.d, trainer.state_dict(), monitor.metadata()
        )

    def at_max_steps() -> bool:
        return bool(t.max_steps) and step >= t.max_steps

    if at_max_steps() or epoch >= t.total_epochs:
        log.info("%s: nothing to do, the run is at step %d of %d", run_dir, step, total)
        return latest if latest.exists() else save(latest)

    runlog = RunLog(run_dir / "log.jsonl", resume_step=step)
    bar = tqdm(
        total=total,
        initial=step,
        unit="step",
        disable=not t.progress or None,  # None: only on a terminal
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
                values = dict(zip(losses, torch.stack(list(losses.values())).tolist()))
                now = time.perf_counter()
                record = {
                    "step": step,
                    "epoch": epoch + 1,
                    "lr": trainer.lr,
                    **values,
                    "sec": round(now - tick, 5),
                }
                runlog.write(record)
                monitor.after_step(trainer, Progress(step, epoch, batch_in_epoch), record)
                tick = time.perf_counter()  # validation time is not the next step's
                running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in values.items()}
                bar.update(1)
                bar.set_postfix(
                    D=f"{running['loss_d']:.3f}",
                    G=f"{running['loss_g_gan']:.3f}",
                    L1=f"{running['loss_g_l1']:.4f}",
                    refresh=False,
                )
                if t.sample_every and step % t.sample_every == 0:
                    grid = batch_grid(real_a, fake, real_b)
                    save_image(grid, run_dir / "samples" / f"step_{step:08d}.png")
                stop = at_max_steps() or (should_stop is not None and should_stop())
                if stop or (t.save_every and step % t.save_every == 0):
                    save(latest)
                if stop:
                    why = "--max-steps reached" if at_max_steps() else "stop requested"
                    log.info("%s at step %d; continue with --resume", why, step)
                    return latest
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
        return latest
    finally:
        bar.close()
        runlog.close()
