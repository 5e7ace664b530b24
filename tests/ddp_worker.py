"""Started by tests/test_distributed.py under torchrun: several `pix2pix train` runs in one job.

    torchrun ... tests/ddp_worker.py DUMP_DIR <train arguments> [:: <train arguments> ...]

The worker joins the process group itself (as a script calling `fit` may), so the runs
share one launch. Rank 0 alone writes checkpoints; to compare the ranks, each rank also
writes its own G and D state (and G's average with --ema-decay) to
DUMP_DIR/run<I>_rank<R>_save<N>.safetensors each time a run saves (the loop calls
`state_dict()` on every rank at every save), and its DiffAugment RNG state to
DUMP_DIR/augment_run<I>_rank<R>_save<N>.safetensors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

import pix2pix.training.loop
from pix2pix.cli import main
from pix2pix.training.trainer import Trainer

DUMP = Path(sys.argv[1])
RUN = 0


class RecordingTrainer(Trainer):
    saves = 0

    def state_dict(self) -> dict:
        state = super().state_dict()
        RecordingTrainer.saves += 1
        short = {"generator": "g", "discriminator": "d"}  # every module of the method
        tensors = {
            f"{short.get(name, name)}.{k}": v
            for name, module in self.method.modules.items()
            for k, v in module.state_dict().items()
        }
        if self.ema is not None:
            tensors |= {f"ema.{k}": v for k, v in self.ema.module.state_dict().items()}
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        name = f"run{RUN}_rank{self.ctx.rank}_save{RecordingTrainer.saves}.safetensors"
        save_file(tensors, DUMP / name)
        augment = {"augment_rng": self.augment_rng.get_state()}  # differs per rank
        save_file(augment, DUMP / f"augment_{name}")
        return state


if __name__ == "__main__":
    DUMP.mkdir(parents=True, exist_ok=True)
    pix2pix.training.loop.Trainer = RecordingTrainer
    dist.init_process_group("gloo")
    runs, current = [], []
    for arg in sys.argv[2:]:
        if arg == "::":
            runs.append(current)
            current = []
        else:
            current.append(arg)
    for RUN, args in enumerate([*runs, current]):  # noqa: B007 (read by RecordingTrainer)
        main(["train", *args])
    dist.destroy_process_group()
