"""Distributed training's in-process pieces: the torchrun environment, devices per rank,
SyncBatchNorm, and continuing an epoch with another process count (no launches)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import tiny_config
from pix2pix.data.pairs.sampler import EpochBatchSampler
from pix2pix.errors import ConfigError, UserError
from pix2pix.nets import build_generator
from pix2pix.training.distributed import (
    DistContext,
    continue_epoch,
    sync_batch_norm,
    train_device,
)


def test_context_from_torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert DistContext.from_env() == DistContext(0, 1, 0)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ctx = DistContext.from_env()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.enabled, ctx.is_main) == (
        3, 4, 1, True, False,
    )  # fmt: skip
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK=4, WORLD_SIZE=4"):
        DistContext.from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK='x' is not an integer"):
        DistContext.from_env()


def test_device_per_rank() -> None:
    two = DistContext(rank=1, world_size=2, local_rank=1)
    cpu = torch.device("cpu")
    assert train_device(cpu, two) == cpu
    assert train_device(torch.device("cuda", 1), DistContext()) == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="each process takes cuda:LOCAL_RANK"):
        train_device(torch.device("cuda", 1), two)
    with pytest.raises(ConfigError, match="runs on CUDA .NCCL. or CPU .gloo."):
        train_device(torch.device("mps"), two)


def test_diffaugment_draws_per_rank_and_each_rank_resumes_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pix2pix.training.trainer as step
    from pix2pix.runtime import Speed

    monkeypatch.setattr(step, "wrap_ddp", lambda module, ctx, device: module)  # no group
    model = {"in_channels": 3, "out_channels": 3}
    cfg = tiny_config("unused", model=model, train={"augment": "translation,cutout,color"})
    cpu = torch.device("cpu")

    def trainer(rank: int, world: int = 2) -> step.Trainer:
        return step.Trainer(cfg, cpu, Speed(), DistContext(rank, world, rank))

    x = torch.rand(2, 6, 32, 32)
    ranks = [trainer(0), trainer(1)]
    first = [t.method.augment(x)[0] for t in ranks]
    assert not torch.equal(first[0], first[1])  # each rank's share augmented its own way
    assert torch.equal(trainer(0, world=1).method.augment(x)[0], first[0])  # rank 0: one process's
    # a checkpoint holds every rank's stream; each rank continues its own
    state = trainer(0, world=1).state_dict()
    state["augment_rng_ranks"] = torch.stack([t.augment_rng.get_state() for t in ranks])
    resumed = trainer(1)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.method.augment(x)[0], ranks[1].method.augment(x)[0])
    # with another process count, rank 1 takes a stream for the step: not rank 0's, and
    # not its own from step 0 again
    del state["augment_rng_ranks"]
    others = [trainer(0), trainer(1)]
    for t in others:
        t.load_state_dict({**state, "steps": 4})
    draws = [t.method.augment(x)[0] for t in others]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], first[1])


def test_sync_batch_norm_needs_cuda_and_keeps_checkpoint_keys() -> None:
    cfg = tiny_config("unused", model={"in_channels": 3, "out_channels": 3})
    with pytest.raises(ConfigError, match="sync_bn needs CUDA"):
        sync_batch_norm(build_generator(cfg.model), DistContext(0, 2, 0), torch.device("cpu"))
    # the conversion itself: same state dict keys, so the checkpoint loads as plain BN
    g = build_generator(cfg.model)
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(build_generator(cfg.model))
    assert any(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
    g.load_state_dict(synced.state_dict())


@pytest.mark.parametrize("old_world, new_world", [(2, 1), (1, 2), (2, 4), (4, 2)])
def test_an_epoch_continues_exactly_with_another_process_count(
    old_world: int, new_world: int
) -> None:
    size, batch = 24, 2

    def consumed(world: int, steps: int) -> list[int]:
        """Images a `world`-process run feeds in the first `steps` steps of epoch 1."""
        images = []
        for rank in range(world):
            sampler = EpochBatchSampler(size, batch, seed=7, rank=rank, world_size=world)
            sampler.set_epoch(1)
            images += [i for rank_batch in list(sampler)[:steps] for _, i in rank_batch]
        return sorted(images)

    steps = 8 // (batch * old_world)  # 8 images done
    skip = continue_epoch(steps, batch, old_world, new_world, size)
    assert skip * batch * new_world == 8
    assert consumed(new_world, skip) == consumed(old_world, steps)  # none repeated or missed
    assert len(set(consumed(old_world, steps))) == 8
    finished = continue_epoch(size // (batch * old_world), batch, old_world, new_world, size)
    assert finished == len(EpochBatchSampler(size, batch, world_size=new_world))


def test_an_epoch_that_cannot_continue_exactly_is_refused() -> None:
    # 1 process x 2 images did 3 batches = 6 images; 4 processes x 2 need multiples of 8
    with pytest.raises(UserError, match="resume with 1 process"):
        continue_epoch(3, 2, old_world=1, new_world=4, size=24)
