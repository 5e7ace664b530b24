"""Distillation: a small student generator trained from a teacher (`--method distill`).

The teacher (`--teacher RUN`, a pix2pix model) translates each input as `translate`
does by default (the paper's inference: batch statistics, dropout on), and that
translation is the student's target in the pix2pix objective: D learns (input, teacher's
output) as real and (input, student's output) as fake, and G gets the GAN term plus
lambda * L1 to the teacher's output. So no target images are needed: inputs alone train
a student (a dataset of `--layout inputs`). As in GAN Compression (Li et al., CVPR 2020),
a feature term adds the mean squared error between the student's encoder features at
`--distill-layers`, mapped to the teacher's widths by learned 1x1 convs (`adapter`,
checkpointed), and the teacher's; U-Nets only.

The student is the method's `generator`, an ordinary pix2pix generator: its checkpoint
translates, evaluates, tiles, serves and exports without the teacher.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix.checkpoint import find_checkpoint, generator_file, load_weights, read_meta
from pix2pix.config import RunConfig, ref
from pix2pix.errors import ConfigError
from pix2pix.methods.base import generator_of
from pix2pix.methods.pix2pix import Pix2PixMethod, encoder_widths
from pix2pix.nets.inference import inference_mode, run_any_size
from pix2pix.nets.layers import FeatureAdapter


def load_teacher(path: str) -> tuple[nn.Module, RunConfig]:
    """The teacher's generator (float32, frozen) and config; a pix2pix model whose
    generator reads the student's inputs."""
    if not path:
        raise ConfigError(f"{ref('teacher')} is empty; give the teacher's run folder")
    ckpt = find_checkpoint(Path(path))
    config, _ = read_meta(ckpt)
    if config.model.method not in ("pix2pix", "distill") or config.model.nz:
        raise ConfigError(
            f"{ref('teacher')} {path}: a {config.model.method} model; the teacher must be a "
            "pix2pix model without a latent code"
        )
    teacher = generator_of(config, init=False)
    load_weights(teacher, generator_file(ckpt, "auto"))
    return teacher.requires_grad_(False), config


class DistillMethod(Pix2PixMethod):
    """The pix2pix step with the teacher's translation as the target, plus the feature
    term."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        t, m = config.train, config.model
        self.teacher, teacher_config = load_teacher(t.teacher)
        tm = teacher_config.model
        if (tm.in_channels, tm.out_channels) != (m.in_channels, m.out_channels):
            raise ConfigError(
                f"{ref('teacher')} {t.teacher}: {tm.in_channels} -> {tm.out_channels} "
                f"channels, the student {m.in_channels} -> {m.out_channels}; they must agree"
            )
        if t.distill_features > 0:
            student, teacher = self.g, self.teacher
            if not (hasattr(student, "encode") and hasattr(teacher, "encode")):
                raise ConfigError(
                    f"{ref('distill_features')} needs U-Nets (teacher {tm.generator}, student "
                    f"{m.generator}); use --distill-features 0"
                )
            depth = min(student.depth, teacher.depth)
            given = [v for v in t.distill_layers.split(",") if v.strip()]
            try:
                levels = [int(v) for v in given] if given else [v for v in (1, 3, 5) if v < depth]
            except ValueError:
                levels = []
            self.levels = sorted(set(levels))
            if not self.levels or max(self.levels) >= depth:
                raise ConfigError(
                    f"{ref('distill_layers')} {t.distill_layers!r}: give encoder levels "
                    f"0..{depth - 1}"
                )
            widths = (encoder_widths(g, self.levels) for g in (student, teacher))
            self.modules["adapter"] = FeatureAdapter(*widths)
            self.param_groups["a"] = ("adapter", t.lr)

    def runs(self) -> dict[str, tuple[nn.Module, bool]]:
        runs = super().runs()
        if "adapter" in self.modules:
            runs["adapter"] = (self.modules["adapter"], True)
        return runs

    def step(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The pix2pix step towards the teacher's translation of `real_a` (`real_b`, the
        dataset's target if it has one, is not used)."""
        self.teacher.to(real_a.device)
        with torch.no_grad(), self.kit.autocast(), inference_mode(self.teacher, False):
            target = run_any_size(self.teacher, real_a, self.teacher.stride)
        return super().step(real_a, target.to(real_a.dtype))

    def extra_g_terms(self, real_a: torch.Tensor) -> dict[str, tuple[float, torch.Tensor]]:
        weight = self.config.train.distill_features
        if weight <= 0:
            return {}
        with self.kit.autocast():
            student = self.g.encode(real_a, self.levels)
            with torch.no_grad(), inference_mode(self.teacher, False):
                teacher = self.teacher.encode(real_a, self.levels)
            mapped = self.run["adapter"](student)
        terms = [F.mse_loss(s.float(), t.float()) for s, t in zip(mapped, teacher)]
        return {"loss_g_distill": (weight, torch.stack(terms).mean())}


SIZES = {"small": 2, "tiny": 4}  # the teacher's ngf divided by this


def student_config(
    teacher: str | Path,
    *,
    ngf: int | None = None,
    size: str = "tiny",
    inputs: str | Path | None = None,
    data: str | Path | None = None,
    train: dict | None = None,
) -> RunConfig:
    """The config of a student of `teacher`: the teacher's, with `--method distill`, a
    width of `ngf` (or the teacher's / 2 for small, / 4 for tiny: a quarter or a
    sixteenth of its parameters), trained on `inputs` alone (`--layout inputs`), on
    `data`, or on the teacher's own data; `train`: further training settings."""
    if size not in SIZES:
        raise ConfigError(f"size {size!r} is not valid; choose one of: {', '.join(SIZES)}")
    _, config = load_teacher(str(teacher))
    width = ngf if ngf is not None else max(1, config.model.ngf // SIZES[size])
    if width < 1:
        raise ConfigError(f"{ref('ngf')} {width} is out of range; use a value >= 1")
    root, layout, monitor = config.data.root, config.data.layout, {}
    if inputs is not None:  # no targets to validate against
        root, layout, monitor = str(inputs), "inputs", {"val_data": "", "val_fraction": 0.0}
    elif data is not None:
        root, layout = str(data), "auto"
    return config.replace(
        model={"method": "distill", "ngf": width},
        data={"root": root, "layout": layout},
        train={"teacher": str(teacher), "init_from": "", **(train or {})},
        monitor=monitor,
    )
