"""The four sections of a run's configuration, with the paper's defaults.

Each field's docstring is its `--help` text; its flag is its name in kebab-case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pix2pix.config.choices import (
    AUGMENTATIONS,
    PREPROCESS_STEPS,
    CacheMode,
    ColorSpace,
    CompileChoice,
    Direction,
    GanLoss,
    Layout,
    Norm,
    OutputDepth,
    Precision,
    Preprocess,
    Recipe,
    Reconstruction,
    Resize,
    Switch,
    Upsample,
    ValMetric,
)
from pix2pix.config.fields import RUNTIME, at_least, check_fields, check_seed, choice, ref
from pix2pix.errors import ConfigError
from pix2pix.palette import palette_setting


@dataclass(frozen=True)
class ModelConfig:
    """The networks: what `pix2pix translate` needs to rebuild the generator."""

    method: str = "pix2pix"
    """Training method (`pix2pix.methods`): pix2pix (the paper's); recorded in the
    checkpoint, where every command reads it."""
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
    """Dropout in the U-Net's inner 512-channel decoder blocks (the paper's only noise)
    and in every ResNet block, between its convolutions (the official code's layout)."""
    conditional: bool = True
    """The discriminator sees the input beside the output (the paper's conditional GAN)."""
    init_std: float = 0.02
    """Standard deviation of the N(0, std) weight initialisation."""
    spectral_norm: bool = False
    """Spectral normalisation of every discriminator convolution (Miyato et al. 2018: each
    weight divided by its largest singular value, by power iteration); off in the paper."""
    upsample: Upsample = "transpose"
    """U-Net decoder upsampling: transpose (the paper's 4x4 stride-2 transposed convs),
    resize-conv (nearest 2x upsample + 3x3 conv in every decoder block, against
    checkerboard artefacts) or resize-conv-head (only in the output block)."""
    d_scales: int = 1
    """Discriminators at this many scales (pix2pixHD): the same PatchGAN on the pair, the
    pair downsampled 2x, 4x, ...; 1 is the paper's single PatchGAN."""

    def __post_init__(self) -> None:
        from pix2pix.nets import DISCRIMINATORS, GENERATORS

        choice(self, "generator", tuple(GENERATORS))
        choice(self, "discriminator", tuple(DISCRIMINATORS))
        check_fields(self)
        for name in ("in_channels", "out_channels"):
            value = getattr(self, name)
            if value is not None:
                at_least(self, name, 1)
        for name in ("ngf", "ndf"):
            at_least(self, name, 1)
        if self.upsample != "transpose" and not self.generator.startswith(("unet_", "encdec_")):
            raise ConfigError(f"{ref('upsample')} {self.upsample} is for U-Nets; use transpose")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{ref('dropout')} {self.dropout} is out of range; use 0 <= p < 1")
        at_least(self, "init_std", 0.0)
        if not 1 <= self.d_scales <= 4:
            raise ConfigError(f"{ref('d_scales')} {self.d_scales} is out of range; use 1..4")


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs are and how they are augmented."""

    root: str = field(default="", metadata=RUNTIME)
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
        check_fields(self)
        if self.palette:  # checked now; a file becomes inline JSON, so checkpoints carry it
            object.__setattr__(self, "palette", palette_setting(self.palette))
        at_least(self, "load_size", 1)
        at_least(self, "crop_size", 1)
        at_least(self, "workers", -1)
        if self.resize and self.crops and self.crop_size > self.load_size:
            raise ConfigError(
                f"{ref('crop_size')} {self.crop_size} is larger than {ref('load_size')} "
                f"{self.load_size}; "
                "use a crop size <= the load size"
            )

    @property
    def resize(self) -> Resize | None:
        """How `preprocess` resizes before cropping: square, width (keeping the aspect
        ratio) or None."""
        return PREPROCESS_STEPS[self.preprocess][0]

    @property
    def written_depth(self) -> str:
        """The depth outputs are written at: `output_depth`, resolved from the training
        targets when a run starts (a checkpoint from before the setting says auto: uint8)."""
        return "uint8" if self.output_depth == "auto" else self.output_depth

    @property
    def crops(self) -> bool:
        """Whether `preprocess` takes a random `crop_size` crop."""
        return PREPROCESS_STEPS[self.preprocess][1]


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
    """Adam learning rate for both networks (for G alone when --lr-d is given)."""
    lr_d: float | None = None
    """D's own Adam learning rate (two time-scale update rule); None: --lr, the paper's.
    It follows the same schedule."""
    beta1: float = 0.5
    """Adam beta1."""
    beta2: float = 0.999
    """Adam beta2."""
    gan_loss: GanLoss = "vanilla"
    """Adversarial loss: vanilla (the paper's, BCE on logits), lsgan (least squares) or
    hinge (D: relu(1 - real) + relu(1 + fake); G: -D(fake))."""
    lambda_l1: float = 100.0
    """Weight of the L1 reconstruction term."""
    lambda_gan: float = 1.0
    """Weight of the adversarial term in G's loss (the paper's: 1; 0 trains on the
    reconstruction loss alone, the paper's "L1 only" ablation, and skips D's step)."""
    reconstruction: Reconstruction = "l1"
    """G's reconstruction loss: l1 (the paper's; it blurs less) or l2 (mean squared error)."""
    reconstruction_scale: int = 1
    """Compute the reconstruction loss on output and target average-pooled by this factor
    (for pairs a few pixels out of register); 1: at full resolution, the paper's."""
    ema_decay: float = 0.0
    """Keep an exponential moving average of G's weights and batch-norm buffers with this
    decay (e.g. 0.999; warm-up: min(decay, (1 + step) / (10 + step))); validation, best/,
    translate, evaluate, export and serve use it. 0: off, the paper's."""
    augment: str = ""
    """Differentiable augmentation of everything D sees (DiffAugment): a comma-separated
    policy of translation, cutout, color; the same transform for the input and output
    halves of each pair and for the real and fake pairs. Empty: off, the paper's."""
    r1_gamma: float = 0.0
    """R1 gradient penalty on real pairs, gamma / 2 * |grad D(real)|^2 (Mescheder et al.
    2018), over every channel D sees (with --conditional the input's too); 0: off."""
    r1_every: int = 16
    """Apply the R1 penalty every N D steps, scaled by N (lazy regularisation)."""
    feature_matching: float = 0.0
    """Weight of pix2pixHD's feature-matching loss for G: L1 between D's intermediate
    features on the real and the fake pair (10 in pix2pixHD); 0: off, the paper's."""
    recipe: Recipe = "paper"
    """Defaults for the options: paper or improved (docs/QUALITY.md's best), filling what is
    left at the paper's value; a setting given wins (one set back to it: recorded paper)."""
    init_from: str = ""
    """Fine-tune: start from this checkpoint's weights (its architecture; new optimisers)."""
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
        check_fields(self)
        at_least(self, "epochs", 0)
        at_least(self, "decay_epochs", 0)
        if self.epochs + self.decay_epochs == 0:
            raise ConfigError(
                f"{ref('epochs')} and {ref('decay_epochs')} are both 0; train at least 1 epoch"
            )
        at_least(self, "batch_size", 1)
        if self.lr <= 0:
            raise ConfigError(f"{ref('lr')} {self.lr} is out of range; use a value > 0")
        if self.lr_d is not None and self.lr_d <= 0:
            raise ConfigError(f"{ref('lr_d')} {self.lr_d} is out of range; use a value > 0")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{ref(name)} {value} is out of range; use 0 <= b < 1")
        at_least(self, "lambda_l1", 0.0)
        at_least(self, "lambda_gan", 0.0)
        at_least(self, "reconstruction_scale", 1)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(
                f"{ref('ema_decay')} {self.ema_decay} is out of range; use 0 <= d < 1 (0: off)"
            )
        for name in self.augment_policy:
            if name not in AUGMENTATIONS:
                raise ConfigError(
                    f"{ref('augment')} {self.augment!r}: unknown augmentation {name!r}; "
                    f"use a comma-separated list of {', '.join(AUGMENTATIONS)}"
                )
        at_least(self, "r1_gamma", 0.0)
        at_least(self, "r1_every", 1)
        at_least(self, "feature_matching", 0.0)
        if self.lambda_l1 == 0 and self.lambda_gan == 0:
            raise ConfigError(
                f"{ref('lambda_l1')} and {ref('lambda_gan')} are both 0; G would learn nothing"
            )
        for name in ("feature_matching", "r1_gamma"):  # both act only through D's training
            if self.lambda_gan == 0 and getattr(self, name) > 0:
                why = f"does nothing with {ref('lambda_gan')} 0 (D is not trained); drop one"
                raise ConfigError(f"{ref(name)} {getattr(self, name)} {why}")
        check_seed(self.seed, ref("seed"))
        for name in ("max_steps", "sample_every", "save_every", "keep_every"):
            at_least(self, name, 0)
        at_least(self, "dist_timeout", 1)

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.decay_epochs

    @property
    def augment_policy(self) -> tuple[str, ...]:
        """--augment as a tuple of names ('translation,color' -> ('translation', 'color'))."""
        return tuple(p.strip() for p in self.augment.split(",") if p.strip())


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
    wandb: str = field(default="", metadata={**RUNTIME, "const": "pix2pix"})
    """Also log losses, metrics and samples to Weights & Biases project PROJECT (the flag
    alone: pix2pix; WANDB_MODE=offline keeps it local; needs the wandb extra)."""
    report: bool = field(default=True, metadata=RUNTIME)
    """Write RUN_DIR/report.html with loss and metric curves (PNG; needs matplotlib)
    when the run ends and after validations (at most every 5 minutes)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(
                f"{ref('val_fraction')} {self.val_fraction} is out of range; use 0 <= f < 1"
            )
        if self.val_fraction and self.val_data:
            raise ConfigError(
                f"{ref('val_data')} and {ref('val_fraction')} both given; use one of them"
            )
        at_least(self, "val_every", 0)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "monitor": MonitorConfig,
}
