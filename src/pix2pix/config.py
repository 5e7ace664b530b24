"""Run configuration: frozen dataclasses, validated on construction, JSON round-trip.

A `RunConfig` is everything needed to rebuild the networks, reload the data and resume a
run; it is stored as `config.json` in every checkpoint. The docstring under each field is
its `--help` text, and a field's CLI flag is its name in kebab-case (`load_size` ->
`--load-size`). The paper's defaults (Isola et al. 2017, sec. 3.3 and 4) are the
defaults here.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import json
import textwrap
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pix2pix.errors import ConfigError

Direction = Literal["AtoB", "BtoA"]
Layout = Literal["auto", "aligned", "paired"]
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
CacheMode = Literal["auto", "on", "off"]
ColorSpace = Literal["rgb", "lab"]
OutputDepth = Literal["auto", "uint8", "uint16", "float32"]
Norm = Literal["batch", "instance", "none"]
GanLoss = Literal["vanilla", "lsgan"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Switch = Literal["auto", "on", "off"]
CompileChoice = Literal["auto", "on", "off", "reduce-overhead", "max-autotune"]
ValMetric = Literal["l1", "mse", "psnr", "ssim", "ms_ssim", "fid"]

# Fields marked RUNTIME say *where* and *how often*, not *what* is trained: a resumed run
# may change them; every other field must match the checkpoint.
RUNTIME = {"runtime": True}


def _choice(flag: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        valid = ", ".join(str(c) for c in choices)
        raise ConfigError(f"{flag} {value!r} is not valid; choose one of: {valid}")


def _at_least(flag: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{flag} {value} is out of range; use a value >= {low}")


SEED_MAX = 2**63 - 1  # numpy's and torch's generators both take 0 .. 2**63 - 1


def check_seed(flag: str, value: int) -> None:
    """A seed every generator in the toolkit accepts, or a ConfigError naming it."""
    if not 0 <= value <= SEED_MAX:
        raise ConfigError(f"{flag} {value} is out of range; use 0 <= seed < 2**63")


@functools.cache
def _resolved_types(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _is_a(value: object, tp: Any) -> bool:
    """Whether `value` (from JSON or Python) fits the field type `tp`."""
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return not isinstance(tp, type) or isinstance(value, tp)


def _check_literals(obj: object) -> None:
    """Every field has its declared type (JSON configs can hold anything) and every
    Literal field one of its choices; a ConfigError names the field's flag and value."""
    for f in fields(obj):  # type: ignore[arg-type]
        tp = _resolved_types(type(obj))[f.name]
        value = getattr(obj, f.name)
        flag = flag_name(f.name, f)
        args = get_args(tp)
        if get_origin(tp) in (Union, UnionType) and type(None) in args:
            if value is None:
                continue
            tp = next(a for a in args if a is not type(None))  # X | None -> X
        if get_origin(tp) is Literal:
            _choice(flag, value, get_args(tp))
        elif not _is_a(value, tp):
            raise ConfigError(f"{flag} {value!r} is not valid; give {_TYPE_NAMES[tp]}")


def _palette_value(value: str) -> str:
    """A checked --palette value: a preset name or inline JSON as given, a file's palette
    as inline JSON. A bad value is a ConfigError naming it."""
    from pix2pix.data.palette import PRESETS, parse_palette  # imports this module

    palette = parse_palette(value)
    text = value.strip()
    if text in PRESETS or text.startswith(("[", "{")):
        return text
    return json.dumps(palette.to_dict(), separators=(",", ":"))


@dataclass(frozen=True)
class ModelConfig:
    """The networks: what `pix2pix translate` needs to rebuild the generator."""

    generator: str = "unet_256"
    """Generator: unet_<S> (S = 32..1024, the paper's U-Net with log2(S) downsamplings),
    encdec_<S> (the same without skips), resnet_6blocks, resnet_9blocks."""
    discriminator: str = "patch_70"
    """PatchGAN by receptive field: patch_1 (PixelGAN), patch_16, patch_34, patch_70,
    patch_142, patch_286 (the paper's ImageGAN-sized one at 256x256)."""
    in_channels: int | None = None
    """Channels of the input images (1 grayscale, 3 RGB); None: read from the data."""
    out_channels: int | None = None
    """Channels of the output images; None: read from the data."""
    ngf: int = 64
    """Generator width (filters in the first layer)."""
    ndf: int = 64
    """Discriminator width (filters in the first layer)."""
    norm: Norm = "batch"
    """Normalisation in both networks: batch (paper), instance, none."""
    dropout: float = 0.5
    """Dropout in the U-Net's inner 512-channel decoder blocks (the paper's only noise)."""
    conditional: bool = True
    """The discriminator sees the input beside the output (the paper's conditional GAN)."""
    init_std: float = 0.02
    """Standard deviation of the N(0, std) weight initialisation."""

    def __post_init__(self) -> None:
        from pix2pix.nets import DISCRIMINATORS, GENERATORS

        _choice("--generator", self.generator, tuple(GENERATORS))
        _choice("--discriminator", self.discriminator, tuple(DISCRIMINATORS))
        _check_literals(self)
        for name in ("in_channels", "out_channels"):
            value = getattr(self, name)
            if value is not None:
                _at_least(flag_name(name), value, 1)
        _at_least("--ngf", self.ngf, 1)
        _at_least("--ndf", self.ndf, 1)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout {self.dropout} is out of range; use 0 <= p < 1")
        _at_least("--init-std", self.init_std, 0.0)


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs are and how they are augmented."""

    root: str = field(default="", metadata={**RUNTIME, "flag": "--data"})
    """Dataset folder: aligned A|B images, or A/ and B/ subfolders with matching names.
    A subfolder named after --split is used when present (facades/ -> facades/train/)."""
    split: str = "train"
    """Subfolder of --data to train on, when it exists."""
    layout: Layout = "auto"
    """aligned: each file holds A and B side by side; paired: A/ and B/ folders; auto."""
    direction: Direction = "AtoB"
    """AtoB translates A (left/A folder) into B; BtoA the reverse (facades labels->photo)."""
    preprocess: Preprocess = "resize_and_crop"
    """Training jitter, the same for input and target: resize_and_crop (to --load-size,
    then random --crop-size crop), crop, scale_width, scale_width_and_crop, none."""
    load_size: int = 286
    """Size images are resized to before cropping."""
    crop_size: int = 256
    """Size of the random training crop."""
    flip: bool = True
    """Random horizontal flip (input and target together)."""
    color_space: ColorSpace = "rgb"
    """rgb: images as they are; lab: the model sees the target photo's CIELAB L* and
    predicts its a*b* (colorization, as in the paper; targets must be colour)."""
    # runtime: it decides how outputs are written, not what is trained (and runs from
    # before the setting, saved as auto, resume with it resolved)
    output_depth: OutputDepth = field(default="auto", metadata=RUNTIME)
    """Depth of translated images: uint8, uint16 (16-bit PNG/TIFF), float32 (TIFF, values
    in [0, 1]); auto: the depth of the training targets, recorded in the checkpoint."""
    # runtime: it describes the input images, it does not change what is trained
    palette: str = field(default="", metadata=RUNTIME)
    """Label colours of the input (a preset name such as facades, a JSON list of
    [R, G, B], or a JSON file); recorded for `serve`'s drawing tools. A file's palette is
    stored in the checkpoint as inline JSON."""
    cache: CacheMode = field(default="auto", metadata=RUNTIME)
    """Keep decoded images in memory: auto (when they fit in a quarter of RAM), on, off."""
    workers: int = field(default=-1, metadata=RUNTIME)
    """Data loading processes; -1 picks from the CPU count, 0 loads in the main process."""

    def __post_init__(self) -> None:
        _check_literals(self)
        if self.palette:  # checked now; a file becomes inline JSON, so checkpoints carry it
            object.__setattr__(self, "palette", _palette_value(self.palette))
        _at_least("--load-size", self.load_size, 1)
        _at_least("--crop-size", self.crop_size, 1)
        _at_least("--workers", self.workers, -1)
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and (
            self.crop_size > self.load_size
        ):
            raise ConfigError(
                f"--crop-size {self.crop_size} is larger than --load-size {self.load_size}; "
                "use a crop size <= the load size"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Objective, optimiser, schedule and bookkeeping."""

    epochs: int = 100
    """Epochs at the initial learning rate."""
    decay_epochs: int = 100
    """Epochs over which the learning rate then decays linearly to zero."""
    batch_size: int = 1
    """Images per optimiser step (the paper uses 1; with batch norm that is instance norm);
    per process under torchrun, where a step takes batch size x processes images."""
    lr: float = 2e-4
    """Adam learning rate for both networks."""
    beta1: float = 0.5
    """Adam beta1."""
    beta2: float = 0.999
    """Adam beta2."""
    gan_loss: GanLoss = "vanilla"
    """Adversarial loss: vanilla (the paper's, BCE on logits) or lsgan (least squares)."""
    lambda_l1: float = 100.0
    """Weight of the L1 reconstruction term."""
    seed: int = 0
    """Seed for initialisation, data order, augmentation and dropout."""
    max_steps: int = field(default=0, metadata=RUNTIME)
    """Stop (with a checkpoint) after this many optimiser steps in total; 0: no limit."""
    precision: Precision = field(default="auto", metadata=RUNTIME)
    """auto (the fastest measured: bf16 on CPUs with native bf16 and on CUDA, else fp32),
    fp32 (the paper's numerics), bf16 (autocast) or fp16 (CUDA, with loss scaling)."""
    channels_last: Switch = field(default="auto", metadata=RUNTIME)
    """NHWC memory layout: auto (on for CUDA, off for CPU, as measured), on, off."""
    compile: CompileChoice = field(default="auto", metadata=RUNTIME)
    """torch.compile the networks: auto (off: measured slower for CPU training), on, off,
    or on in a torch.compile mode: reduce-overhead (CUDA graphs), max-autotune."""
    device: str = field(default="auto", metadata=RUNTIME)
    """auto (cuda when available, else cpu), cpu, cuda, cuda:N, mps. Under torchrun each
    process takes cuda:LOCAL_RANK."""
    sync_bn: bool = field(default=False, metadata=RUNTIME)
    """Multi-process runs (torchrun): batch norm statistics over the global batch
    (SyncBatchNorm, CUDA only) instead of each process's own batch; see docs/DISTRIBUTED.md."""
    dist_timeout: int = field(default=600, metadata=RUNTIME)
    """Multi-process runs: seconds a process waits for the others in a collective before
    the job fails (bounds a hang when a process dies or stalls)."""
    sample_every: int = field(default=500, metadata=RUNTIME)
    """Save an input | output | target grid every N steps (0: never)."""
    save_every: int = field(default=500, metadata=RUNTIME)
    """Refresh the latest/ checkpoint every N steps (and always at each epoch's end)."""
    keep_every: int = field(default=50, metadata=RUNTIME)
    """Keep a checkpoint epoch_NNNN/ every N epochs (0: only latest/)."""
    progress: bool = field(default=True, metadata=RUNTIME)
    """Show a progress bar (on a terminal)."""

    def __post_init__(self) -> None:
        _check_literals(self)
        _at_least("--epochs", self.epochs, 0)
        _at_least("--decay-epochs", self.decay_epochs, 0)
        if self.epochs + self.decay_epochs == 0:
            raise ConfigError("--epochs and --decay-epochs are both 0; train at least 1 epoch")
        _at_least("--batch-size", self.batch_size, 1)
        if self.lr <= 0:
            raise ConfigError(f"--lr {self.lr} is out of range; use a value > 0")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{flag_name(name)} {value} is out of range; use 0 <= b < 1")
        _at_least("--lambda-l1", self.lambda_l1, 0.0)
        check_seed("--seed", self.seed)
        for name in ("max_steps", "sample_every", "save_every", "keep_every"):
            _at_least(flag_name(name), getattr(self, name), 0)
        _at_least("--dist-timeout", self.dist_timeout, 1)

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.decay_epochs


@dataclass(frozen=True)
class MonitorConfig:
    """Validation on held-out pairs, the best/ checkpoint, curves and TensorBoard."""

    val_data: str = field(default="", metadata=RUNTIME)
    """Folder of held-out pairs (layout as --data; its val/ subfolder when present) to
    validate on during training; best/ is kept beside latest/."""
    val_fraction: float = 0.0
    """Hold out this fraction of the training pairs (chosen by --seed) for validation
    instead of --val-data; training never sees them."""
    val_every: int = field(default=0, metadata=RUNTIME)
    """Validate every N steps (0: at the end of each epoch) and at the end of training."""
    val_metric: ValMetric = field(default="l1", metadata=RUNTIME)
    """The metric best/ follows: l1, mse, fid (lower is better); psnr, ssim, ms_ssim
    (higher is better). fid needs the Inception weights (see --help of evaluate)."""
    val_eval: bool = field(default=False, metadata=RUNTIME)
    """Validate with eval-mode inference (no dropout, running batch-norm statistics)
    instead of the paper's test-time mode (dropout on, batch statistics, fixed seed)."""
    tensorboard: bool = field(default=False, metadata=RUNTIME)
    """Also log losses and metrics to RUN_DIR/tensorboard (needs the tensorboard extra)."""
    report: bool = field(default=True, metadata=RUNTIME)
    """Write RUN_DIR/report.html with loss and metric curves (PNG; needs matplotlib)
    when the run ends and after validations (at most every 5 minutes)."""

    def __post_init__(self) -> None:
        _check_literals(self)
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction {self.val_fraction} is out of range; use 0 <= f < 1")
        if self.val_fraction and self.val_data:
            raise ConfigError("--val-data and --val-fraction both given; use one of them")
        _at_least("--val-every", self.val_every, 0)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "monitor": MonitorConfig,
}


@dataclass(frozen=True)
class RunConfig:
    """A whole training run: networks, data and optimisation."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from `to_dict()` output (missing fields take their defaults); unknown
        keys, values of the wrong type and other shapes are a ConfigError naming `source`."""
        names = ", ".join(SECTIONS)
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{source}: a config is a JSON object with the sections {names}, "
                f"not {type(raw).__name__}"
            )
        unknown = sorted(set(raw) - set(SECTIONS))
        if unknown:
            raise ConfigError(
                f"{source}: unknown section(s) {', '.join(map(str, unknown))}; "
                f"the sections are {names}"
            )
        parts = {}
        for section, section_cls in SECTIONS.items():
            values = raw.get(section, {})
            if not isinstance(values, dict):
                raise ConfigError(
                    f"{source}: section {section} must be a JSON object of settings, "
                    f"not {type(values).__name__}"
                )
            known = {f.name for f in fields(section_cls)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise ConfigError(
                    f"{source}: unknown {section} setting(s) {', '.join(unknown)}; "
                    "it was written by a newer pix2pix or edited by hand"
                )
            try:
                parts[section] = section_cls(**values)
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
        return cls(**parts)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "config") -> RunConfig:
        return cls.from_dict(json.loads(text), source)

    def replace(self, **sections: dict[str, Any]) -> RunConfig:
        """Copy with some fields changed: `cfg.replace(train={"seed": 1})`."""
        parts = {
            name: dataclasses.replace(getattr(self, name), **sections.get(name, {}))
            for name in SECTIONS
        }
        return RunConfig(**parts)

    def differences(
        self, other: RunConfig, *, ignore_runtime: bool = True, runtime_only: bool = False
    ) -> list[str]:
        """Fields (as CLI flags) whose values differ, skipping runtime ones if asked
        (or, with `runtime_only`, only those)."""
        diffs = []
        for section, section_cls in SECTIONS.items():
            for f in fields(section_cls):
                runtime = bool(f.metadata.get("runtime"))
                if (ignore_runtime and runtime and not runtime_only) or (
                    runtime_only and not runtime
                ):
                    continue
                mine = getattr(getattr(self, section), f.name)
                theirs = getattr(getattr(other, section), f.name)
                if mine != theirs:
                    diffs.append(f"{flag_name(f.name, f)} {theirs!r} (checkpoint: {mine!r})")
        return diffs


def flag_name(name: str, f: dataclasses.Field | None = None) -> str:
    """The CLI flag of a config field: `load_size` -> `--load-size`."""
    if f is not None and "flag" in f.metadata:
        return f.metadata["flag"]
    return "--" + name.replace("_", "-")


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass, as one line of text."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for stmt, nxt in itertools.pairwise(body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a JSON config file gives, {section: {field: value}}, checked by
    building a RunConfig from them (a checkpoint's config.json works too)."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; check the path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not a readable JSON config ({reason})") from None
    if isinstance(raw, dict) and "config" in raw and not set(raw) & set(SECTIONS):
        raw = raw["config"]  # checkpoints nest the config beside their progress
    RunConfig.from_dict(raw, source=str(path))
    return raw


def load_config_file(path: Path) -> RunConfig:
    """Read a RunConfig from a JSON file; fields it does not give take their defaults."""
    return RunConfig.from_dict(read_config_file(path), source=str(path))
