"""What a training method is (`Method`), and what the shared loop lends it (`Kit`).

A method owns its networks, its objective and its step: it builds its modules from the
config, names them (each is checkpointed as `<name>.safetensors`), makes one optimiser
per group of them, and takes one optimiser step per batch. Everything around that is
shared and lives in `training/`: the data, the loop, checkpoints and exact resume,
DistributedDataParallel, precision, the learning-rate schedule, the weight average,
DiffAugment, validation and logging. The loop hands the method those services as a `Kit`.

At inference a method names the module that runs (`inference`), builds it alone
(`inference_module`) and says which inputs beyond the image it takes (`extra_inputs`:
a latent code, a one-hot label map), so that translate, the compiled cache, tiling,
serve and export run every method the same way.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

from pix2pix.config import RunConfig
from pix2pix.runtime import Speed


class Kit(Protocol):
    """The shared services a method's step uses (implemented by `training.Trainer`)."""

    config: RunConfig
    device: torch.device
    speed: Speed
    scaler: torch.amp.GradScaler
    steps: int  # optimiser steps taken before this one

    def place(self, module: nn.Module) -> nn.Module:
        """A new module on the training device, in the training memory layout, with
        SyncBatchNorm under torchrun when --sync-bn asks for it."""

    def runner(self, module: nn.Module, *, ddp: bool = True) -> nn.Module:
        """What runs `module` in the step: inside DistributedDataParallel (several ranks;
        `ddp=False` for a module that takes no gradient there), inside torch.compile."""

    def adam(self, params: Iterable[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """The run's Adam (betas from the config, fused where the device has it)."""

    def augment(self, *images: torch.Tensor) -> list[torch.Tensor]:
        """Discriminator inputs under --augment's transform, one draw for all of them."""

    def autocast(self) -> contextlib.AbstractContextManager:
        """The run's mixed precision for forward passes."""


@dataclass(frozen=True)
class ExtraInput:
    """An inference input beyond the image: `spatial` ones are (B, C, H, W) and padded and
    tiled with the image; the others ((B, C): a latent code) go to every tile whole."""

    name: str
    channels: int
    kind: Literal["spatial", "vector"] = "vector"


class Method(ABC):
    """A training method: its networks, its objective, its step (`methods.METHODS`)."""

    # the module inference runs; its weight average (--ema-decay) is `<name>_ema`
    inference: ClassVar[str] = "generator"

    def __init__(self, config: RunConfig, kit: Kit) -> None:
        self.config = config
        self.kit = kit
        # name -> module: each is checkpointed as <name>.safetensors and resumed from it
        self.modules: dict[str, nn.Module] = {}
        # name -> (optimiser, base learning rate): the schedule scales every base rate;
        # the training state keeps each as optimizer_<name>
        self.optimizers: dict[str, tuple[torch.optim.Optimizer, float]] = {}

    @classmethod
    @abstractmethod
    def inference_module(cls, config: RunConfig, init: bool = True) -> nn.Module:
        """The module inference runs, built alone from the config (`init=False`: its
        weights will be loaded, skip the random initialisation)."""

    @classmethod
    def extra_inputs(cls, config: RunConfig) -> tuple[ExtraInput, ...]:
        """The inputs the inference module takes after the image, in order (none for
        pix2pix). They are optional at inference: `default_extras` fills the ones not given."""
        return ()

    @classmethod
    def default_extras(
        cls, config: RunConfig, x: torch.Tensor, given: dict[str, torch.Tensor] | None
    ) -> tuple[torch.Tensor, ...]:
        """The extra inputs for image batch `x` (B, C, H, W), in `extra_inputs` order:
        those `given`, the rest from the method's default (zeros here)."""
        given = dict(given or {})
        out = []
        for spec in cls.extra_inputs(config):
            value = given.pop(spec.name, None)
            if value is None:
                shape = (x.shape[0], spec.channels)
                shape += tuple(x.shape[2:]) if spec.kind == "spatial" else ()
                value = torch.zeros(shape, dtype=x.dtype, device=x.device)
            out.append(value)
        if given:
            raise ValueError(
                f"extra input(s) {', '.join(sorted(given))} are not taken by this model; "
                f"it takes: {', '.join(s.name for s in cls.extra_inputs(config)) or 'none'}"
            )
        return tuple(out)

    @property
    def module_for_inference(self) -> nn.Module:
        return self.modules[self.inference]

    @abstractmethod
    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One optimiser step on a batch: (B, C_in, H, W) inputs and (B, C_out, H, W)
        targets in [-1, 1]. Returns the losses to log and the batch's output. The kit's
        scaler is updated, the step counted and the weight average taken after it."""

    def summary(self) -> dict[str, Any]:
        """Parameter counts by module, for the log."""
        return {k: sum(p.numel() for p in m.parameters()) for k, m in self.modules.items()}
