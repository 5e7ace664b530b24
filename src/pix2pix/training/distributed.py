"""Multi-process training under torchrun: the process group and the few collectives we need.

`torchrun --nproc_per_node N -m pix2pix train ...` sets RANK, LOCAL_RANK and WORLD_SIZE;
`DistContext.from_env()` reads them (a plain `python -m pix2pix` run is world size 1 and
never touches torch.distributed). Each rank trains on its share of every global batch
(per-rank batch x world size); DistributedDataParallel averages the gradients, so every
rank takes the same optimiser step and the weights stay identical. Rank 0 alone logs,
samples and writes checkpoints, but every rank takes part in the collectives around them.

Failure: collectives time out after `--dist-timeout` seconds, and torchrun stops every
other worker as soon as one exits with an error, so a failing rank never leaves the job
hanging.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import inspect
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from pix2pix.checkpoint import Progress
from pix2pix.errors import ConfigError, UserError, setting

log = logging.getLogger(__name__)

_DROPOUT_STREAM = 2  # distinguishes per-rank dropout seeds from data-order/augment seeds
_AUGMENT_STREAM = 3  # and per-rank DiffAugment seeds from both


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: rank, world size, and rank within its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistContext:
        """From torchrun's RANK, WORLD_SIZE, LOCAL_RANK (unset: a single process)."""
        values = {}
        for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
            raw = os.environ.get(name, str(default))
            try:
                values[name] = int(raw)
            except ValueError:
                raise ConfigError(
                    f"environment variable {name}={raw!r} is not an integer; "
                    "start multi-process runs with torchrun"
                ) from None
        ctx = cls(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])
        if ctx.world_size < 1 or not 0 <= ctx.rank < ctx.world_size or ctx.local_rank < 0:
            raise ConfigError(
                f"RANK={ctx.rank}, WORLD_SIZE={ctx.world_size}, LOCAL_RANK={ctx.local_rank} "
                "are inconsistent; start multi-process runs with torchrun"
            )
        return ctx

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def train_device(requested: torch.device, ctx: DistContext) -> torch.device:
    """The device this rank trains on: under torchrun, `cuda` means cuda:LOCAL_RANK."""
    if not ctx.enabled:
        return requested
    if requested.type == "cuda":
        if requested.index is not None:
            raise ConfigError(
                f"{setting('--device')} {requested} with {ctx.world_size} processes: each process "
                "takes "
                f"cuda:LOCAL_RANK; pass {setting('--device')} cuda (or auto) and choose GPUs with "
                "CUDA_VISIBLE_DEVICES"
            )
        if ctx.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {ctx.local_rank} but this node has {torch.cuda.device_count()} "
                "GPU(s); start at most one process per GPU (--nproc_per_node)"
            )
        return torch.device("cuda", ctx.local_rank)
    if requested.type != "cpu":
        raise ConfigError(
            f"{setting('--device')} {requested} with {ctx.world_size} processes: multi-process "
            "training "
            f"runs on CUDA (NCCL) or CPU (gloo); use {setting('--device')} cuda or cpu"
        )
    return requested


@contextlib.contextmanager
def process_group(ctx: DistContext, device: torch.device, timeout_s: float) -> Iterator[None]:
    """Join the job for the duration of the block: NCCL between GPUs, gloo on CPU.

    A no-op for a single process, or when the caller already initialised the group (it
    then stays the caller's to destroy). Every collective fails after `timeout_s` instead
    of waiting forever for a rank that died or stalls. On an exception the group is left
    as it is: destroying it could block on peers still inside a collective, and the
    process is about to exit anyway (torchrun then stops the others).
    """
    if not ctx.enabled or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend="nccl" if device.type == "cuda" else "gloo",
        rank=ctx.rank,
        world_size=ctx.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
        device_id=device if device.type == "cuda" else None,
    )
    yield
    dist.destroy_process_group()


def wrap_ddp(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` when the job has several ranks.

    No buffer broadcast before each forward pass: the only buffers are batch norm
    running statistics, which training-mode batch norm never reads. Broadcasting would
    copy rank 0's onto the other ranks before every pass, a collective per pass for
    copies nobody uses: the checkpoint takes rank 0's, and with SyncBatchNorm they are
    equal on every rank anyway.
    """
    if not ctx.enabled:
        return module
    ddp = nn.parallel.DistributedDataParallel
    # newer torch renamed the flag (the new one still copies rank 0's buffers once, at
    # construction, which is harmless: they are equal there)
    new_flag = "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters
    no_sync = {"forward_sync_buffers" if new_flag else "broadcast_buffers": False}
    ids = [device.index] if device.type == "cuda" else None
    return ddp(module, device_ids=ids, **no_sync)


def sync_batch_norm(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """`module` with its batch norm layers computing statistics over all ranks' batches.

    The new layers share the old ones' parameters and buffers, so the state dict (and
    the checkpoint) keeps the same keys and loads into plain batch norm.
    """
    if not ctx.enabled:
        return module
    if device.type != "cuda":
        raise ConfigError(
            f"{setting('--sync-bn')} needs CUDA devices (PyTorch's SyncBatchNorm has no "
            f"{device.type} "
            f"kernel); use {setting('--no-sync-bn')}, or {setting('--norm')} instance"
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


# Our collectives keep their work handles and tensors referenced from Python for the next
# few collectives. Otherwise gloo's worker thread may drop the last reference to a tensor
# that has a Python object, which needs the GIL; if the main thread is at that moment
# destroying the process group (it joins that worker thread while holding the GIL), the
# process deadlocks at exit (seen with torch 2.13 on CPU, after the final barrier).
_recent: collections.deque = collections.deque(maxlen=16)


def _collective(
    op: Callable[..., dist.Work | None], *args: torch.Tensor | list[torch.Tensor]
) -> None:
    """Run a torch.distributed collective to completion, its tensors kept alive a while."""
    work = op(*args, async_op=True)
    if work is not None:
        work.wait()
    _recent.append((work, args))


def rank_seed(seed: int, rank: int, step: int = 0, stream: int = _DROPOUT_STREAM) -> int:
    """A seed for rank `rank`'s dropout stream, distinct per (seed, rank, step)."""
    return int(np.random.SeedSequence([seed, stream, rank, step]).generate_state(1)[0])


def augment_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of rank `rank`'s DiffAugment draws from optimiser step `step`: each rank
    its own (one draw for every rank would augment all shares of a global batch alike);
    a single process and rank 0 at step 0 keep the stream of one process, seed + 1."""
    if rank == 0 and step == 0:
        return seed + 1
    return rank_seed(seed, rank, step, _AUGMENT_STREAM)


def agree(
    losses: dict[str, torch.Tensor], stop: bool, ctx: DistContext
) -> tuple[dict[str, float], bool]:
    """Losses averaged over ranks (the global batch's) and the stop flag of any rank.

    One all-reduce per step carries both, so that every rank stops at the same step
    when a signal reached only some of them, or reached them during different steps.
    """
    values = torch.stack([v.detach().float() for v in losses.values()])
    flag = torch.tensor([float(stop)], device=values.device)
    packed = torch.cat([values, flag])
    if ctx.enabled:
        _collective(dist.all_reduce, packed)
    *sums, stops = packed.tolist()
    return {k: v / ctx.world_size for k, v in zip(losses, sums)}, stops > 0


def gather_rows(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """(world_size, *t.shape): every rank's `t`, in rank order, on every rank."""
    if not ctx.enabled:
        return t.unsqueeze(0)
    parts = [torch.empty_like(t) for _ in range(ctx.world_size)]
    _collective(dist.all_gather, parts, t.contiguous())
    return torch.stack(parts)


def fingerprint(module: nn.Module) -> torch.Tensor:
    """(2,) float64 checksum of the parameters: equal weights give equal fingerprints."""
    with torch.no_grad():
        sums = [torch.stack([p.sum(), p.abs().sum()]).double() for p in module.parameters()]
        return torch.stack(sums).sum(0)


def check_in_sync(modules: dict[str, nn.Module], ctx: DistContext) -> None:
    """Raise if any rank's weights differ from rank 0's (a silent divergence)."""
    if not ctx.enabled:
        return
    for name, module in modules.items():
        prints = gather_rows(fingerprint(module), ctx)
        bad = [r for r in range(1, ctx.world_size) if not torch.equal(prints[0], prints[r])]
        if bad:
            raise RuntimeError(f"rank(s) {bad} hold different {name} weights from rank 0")


def check_same_start(step: int, ctx: DistContext, device: torch.device, source: str) -> None:
    """Raise unless every rank resumes from the same step (the same checkpoint)."""
    if not ctx.enabled:
        return
    steps = gather_rows(torch.tensor([step], device=device), ctx).flatten().tolist()
    if len(set(steps)) > 1:
        raise UserError(
            f"{source}: the processes resumed from different checkpoints (steps {steps} by "
            "rank); put the run folder on a filesystem every node shares"
        )


def barrier(ctx: DistContext, device: torch.device) -> None:
    """Wait for every rank (bounded by the process group's timeout)."""
    if ctx.enabled:  # an all-reduce: no rank returns before every rank has called it
        _collective(dist.all_reduce, torch.zeros(1, device=device))


def continue_epoch(
    batches_done: int, batch_size: int, old_world: int, new_world: int, size: int
) -> int:
    """Per-rank batches to skip when an epoch begun by `old_world` ranks goes on with
    `new_world` ranks (a resume with another process count).

    Global batch k of a W-rank run is positions [k*b*W, (k+1)*b*W) of the epoch's
    permutation (see `EpochBatchSampler`), so the images done so far are a prefix of it;
    the new run continues exactly there when that prefix is a whole number of its global
    batches. Otherwise this raises: resume with the old process count, or from an
    epoch boundary.
    """
    if old_world == new_world:
        return batches_done
    done = batches_done * batch_size * old_world
    if done >= size:  # the epoch was complete
        return math.ceil(math.ceil(size / new_world) / batch_size)
    if done % (batch_size * new_world):
        raise UserError(
            f"the checkpoint is {done} images into an epoch, run by {old_world} process(es); "
            f"{new_world} process(es) x {setting('--batch-size')} {batch_size} cannot continue "
            "there "
            f"exactly: resume with {old_world} process(es) or from an epoch_NNNN checkpoint"
        )
    return done // (batch_size * new_world)


def resume_progress(progress: Progress, ctx: DistContext, batch_size: int, size: int) -> Progress:
    """`progress` restated for this job's world size (`size`: images in the dataset)."""
    if progress.world_size != ctx.world_size:
        skip = continue_epoch(
            progress.batch_in_epoch, batch_size, progress.world_size, ctx.world_size, size
        )
        log.warning(
            "resuming a %d-process run with %d process(es): the global batch changes from "
            "%d to %d images (the learning rate is not rescaled)",
            progress.world_size,
            ctx.world_size,
            progress.world_size * batch_size,
            ctx.world_size * batch_size,
        )
        progress = replace(progress, batch_in_epoch=skip)
    return replace(progress, world_size=ctx.world_size)


def is_main_process() -> bool:
    """Whether this process reports and writes: rank 0 under torchrun, or the only one."""
    return DistContext.from_env().is_main
