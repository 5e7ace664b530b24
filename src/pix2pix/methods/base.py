"""What a training method is (`Method`), and what the shared loop lends it (`Kit`).

A method owns its networks, its objective and its step: it builds its modules from the
config and names them (each is checkpointed as `<name>.safetensors`), says which of them
run in the step and whether inside DistributedDataParallel (`runs`), which are optimised
at which base rate (`param_groups`), and takes one optimiser step per batch. The loop
(`training.Trainer`) does the rest before the first step and around every one: device,
memory layout, SyncBatchNorm, DDP and torch.compile wrapping, one fused Adam per group,
checkpoints and exact resume, the learning-rate schedule, the weight average,
validation and logging. It never calls back into the loop: what its step needs at run
time (precision, the grad scaler, the step count, DiffAugment's stream) is the `Kit`.

At inference a method names the module that runs (`inference`), builds it alone
(`inference_module`) and says which inputs beyond the image it takes (`extra_inputs`:
a latent code, a one-hot label map), so that translate, the compiled cache, tiling,
serve and export run every method the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from pix2pix.config import RunConfig
from pix2pix.nets import build_generator
from pix2pix.nets.inference import run_any_size
from pix2pix.palette import parse_palette
from pix2pix.runtime import Kit


def generator_of(config: RunConfig, init: bool = True) -> nn.Module:
    """The run's generator; a palette label model gets the palette's colours (which the
    checkpoint's config.json records) for its `LabelMap`."""
    m = config.model
    colors = parse_palette(config.data.palette).colors if m.labels == "palette" else None
    return build_generator(m, init=init, colors=colors)


def seeded_code(nz: int, x: torch.Tensor) -> torch.Tensor:
    """The code `--z-seed 0` draws (`Pix2Pix.sample_z(1, 0)`), for each image of batch x:
    (B, nz) in x's dtype and device. What a model with a code uses when none is given, so
    validation, the Python API, translate, evaluate and serve agree without a seed."""
    z = torch.randn(1, nz, generator=torch.Generator().manual_seed(0))
    return z.to(x.device, x.dtype).expand(len(x), -1)


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

    def __init__(self, config: RunConfig) -> None:
        """Build the modules (in a fixed order: the seed decides their weights)."""
        self.config = config
        # name -> module: each is checkpointed as <name>.safetensors and resumed from it;
        # the loop replaces each by its placed copy (device, layout, SyncBatchNorm)
        self.modules: dict[str, nn.Module] = {}
        # optimiser name -> (module name, base learning rate): the loop makes the Adam,
        # the schedule scales the rate, the training state keeps it as optimizer_<name>
        self.param_groups: dict[str, tuple[str, float]] = {}
        # set by the loop before the first step
        self.run: dict[str, nn.Module] = {}  # what `runs` names, wrapped for the step
        self.optimizers: dict[str, tuple[torch.optim.Optimizer, float]] = {}
        self.kit: Kit

    def runs(self) -> dict[str, tuple[nn.Module, bool]]:
        """What the step runs, by name: (module, inside DDP). A module that takes no
        gradient where it runs (D in G's step) stays outside DDP, which would wait for
        gradients that never come. Called once the modules are placed. Default: every
        module as it is, inside DDP."""
        return {name: (module, True) for name, module in self.modules.items()}

    @classmethod
    @abstractmethod
    def inference_module(cls, config: RunConfig, init: bool = True) -> nn.Module:
        """The module inference runs, built alone from the config (`init=False`: its
        weights will be loaded, skip the random initialisation)."""

    @classmethod
    def encoder_module(cls, config: RunConfig) -> nn.Module | None:
        """The module that reads an output-side image back into the extra inputs (the
        checkpoint's `encoder`), built alone; None for a method without one."""
        return None

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

    @classmethod
    def inference_call(
        cls, config: RunConfig, extras: Sequence[torch.Tensor], stride: int
    ) -> Callable[[Callable[..., torch.Tensor], torch.Tensor], torch.Tensor]:
        """How the inference module runs on one input window (B', C_in + the spatial
        extras' channels, h, w) of any size: on the window's image and spatial extras, with
        the vector extras (B, C) repeated to the window's batch (B' = k x B when k tiles
        share a pass), padded to multiples of `stride` and cropped back."""
        specs = cls.extra_inputs(config)
        c_in = int(config.model.in_channels or 0)

        def call(net: Callable[..., torch.Tensor], t: torch.Tensor) -> torch.Tensor:
            if not specs:
                return run_any_size(net, t, stride)
            sizes = [c_in] + [s.channels for s in specs if s.kind == "spatial"]
            image, *spatial = t.split(sizes, dim=1)
            windows = iter(spatial)
            args = [
                next(windows) if s.kind == "spatial" else e.repeat(len(t) // len(e), 1)
                for s, e in zip(specs, extras)
            ]
            return run_any_size(net, image, stride, args)

        return call

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
