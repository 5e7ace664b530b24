"""The training sections of a run's configuration: the objective, optimiser, schedule and
bookkeeping (`TrainConfig`), and validation and logging (`MonitorConfig`), with the
paper's defaults. Each field's docstring is its `--help` text; its flag is its name in
kebab-case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pix2pix.config.choices import (
    AUGMENTATIONS,
    AlignGuide,
    CompileChoice,
    GanLoss,
    Precision,
    Recipe,
    Reconstruction,
    Switch,
    ValMetric,
)
from pix2pix.config.fields import RUNTIME, at_least, check_fields, check_seed, ref
from pix2pix.errors import ConfigError


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
    lambda_kl: float = 0.01
    """Weight of the KL term pulling the encoder's codes towards N(0, I) (bicyclegan's
    cVAE-GAN; the official default)."""
    lambda_z: float = 0.5
    """Weight of the latent regression |E(G(A, z)) - z| on random codes (bicyclegan's
    cLR-GAN; the official default)."""
    lambda_labelmix: float = 10.0
    """Weight of LabelMix (oasis): D's logits on a real/fake mix cut along the label map
    must be the same mix of its logits on each (the paper's 10)."""
    mode_seeking: float = 0.0
    """Weight of the mode-seeking term (Mao et al. 2019): 1 / (mean |G(A, z1) - G(A, z2)|
    / mean |z1 - z2|), which penalises two codes giving near-identical outputs; needs a
    generator with a code (--nz); 0: off."""
    lambda_gan: float = 1.0
    """Weight of the adversarial term in G's loss (the paper's: 1; 0 trains on the
    reconstruction loss alone, the paper's "L1 only" ablation, and skips D's step)."""
    reconstruction: Reconstruction = "l1"
    """G's reconstruction loss: l1 (the paper's; it blurs less), l2 (mean squared error) or
    pyramid (L1 summed over a Gaussian pyramid of output and target, as PyramidPix2pix:
    coarse levels forgive pairs a few pixels out of register) or aligned (L1 against the
    target re-registered to the output, tile by tile, by the shift within --align-shift
    pixels that fits best: for pairs a few pixels out of register)."""
    reconstruction_scale: int = 1
    """Compute the reconstruction loss on output and target average-pooled by this factor
    (for pairs a few pixels out of register); 1: at full resolution, the paper's."""
    pyramid_levels: int = 4
    """Levels of --reconstruction pyramid (1: plain L1 at full resolution)."""
    pyramid_weights: str = ""
    """Weights of the pyramid levels, finest first, comma-separated (e.g. 1,1,2,4); empty:
    1 for every level."""
    align_shift: int = 8
    """Pixels (at the training size) --reconstruction aligned searches each way for each
    tile's best shift: the pairs' misregistration, with a margin for rotation."""
    align_tiles: int = 1
    """--reconstruction aligned cuts the image into this many tiles per side, each with its
    own shift (1: one shift for the whole image, the most robust measured; more follow
    rotation and warping where each tile has structure enough)."""
    align_guide: AlignGuide = "input"
    """What --reconstruction aligned registers the target to: input (the input's edges, by
    correlation: for label maps, sketches, gray images, whose edges are the target's; the
    best measured) or output (G's output, by luminance: for inputs whose edges are not)."""
    nce_weight: float = 0.0
    """Weight of a supervised PatchNCE term (Park et al. 2020) on G's own encoder
    features (no pretrained network): patches of the output should match the target's
    patch at the same place more than its other patches; U-Nets without a code whose
    input and output have the same channels; 0: off."""
    nce_layers: str = "0,2,4"
    """U-Net encoder levels PatchNCE compares (0: the first, full-width one), comma-separated."""
    nce_patches: int = 256
    """Patches PatchNCE samples per level and image."""
    nce_adaptive_steps: int = 0
    """The adaptive supervised PatchNCE (for pairs that do not line up): over this many
    steps, patches whose output and target features disagree come to count less
    (`pix2pix.losses.adaptive_nce_weights`); 0: plain supervised PatchNCE."""
    teacher: str = ""
    """--method distill: the teacher's run or checkpoint folder (a pix2pix U-Net or ResNet
    model); its translation of each input is the student's target."""
    distill_features: float = 1.0
    """--method distill: weight of the feature term, the mean squared error between the
    student's encoder features (mapped by learned 1x1 convs) and the teacher's (U-Nets)."""
    distill_layers: str = ""
    """--method distill: the encoder levels the feature term compares, comma-separated;
    empty: those of 1, 3, 5 the networks have."""
    ffl_weight: float = 0.0
    """Weight of the focal frequency loss (Jiang et al. 2021): the output's and target's
    2-D spectra compared, each frequency weighted by how wrong it is; 0: off."""
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
    """Defaults for the options: paper, improved (docs/QUALITY.md's best), spade or oasis
    (label maps, with --labels), filling what is left at the paper's value; a setting
    given wins (one set back to it: recorded paper)."""
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
        for name in ("lambda_kl", "lambda_z", "lambda_labelmix", "mode_seeking"):
            at_least(self, name, 0.0)
        at_least(self, "reconstruction_scale", 1)
        at_least(self, "pyramid_levels", 1)
        at_least(self, "align_shift", 0)
        at_least(self, "align_tiles", 1)
        at_least(self, "ffl_weight", 0.0)
        at_least(self, "nce_weight", 0.0)
        at_least(self, "nce_patches", 2)
        at_least(self, "nce_adaptive_steps", 0)
        if not self.nce_levels:
            raise ConfigError(f"{ref('nce_layers')} is empty; give encoder levels such as 0,2,4")
        weights = self.level_weights
        if len(weights) not in (0, self.pyramid_levels) or any(w < 0 for w in weights):
            raise ConfigError(
                f"{ref('pyramid_weights')} {self.pyramid_weights!r}: give {self.pyramid_levels} "
                "weights >= 0, finest level first (or none)"
            )
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
    def reconstruction_spec(self) -> dict[str, Any]:
        """The keywords of `losses.reconstruction_loss` these settings stand for."""
        return {
            "kind": self.reconstruction,
            "scale": self.reconstruction_scale,
            "levels": self.pyramid_levels,
            "weights": self.level_weights,
            "shift": self.align_shift,
            "tiles": self.align_tiles,
        }

    @property
    def nce_levels(self) -> list[int]:
        """--nce-layers as sorted distinct levels; a non-integer is a ConfigError."""
        try:
            levels = sorted({int(v) for v in self.nce_layers.split(",") if v.strip()})
        except ValueError:
            levels = [-1]
        if any(v < 0 for v in levels):
            raise ConfigError(
                f"{ref('nce_layers')} {self.nce_layers!r}: give encoder levels >= 0, e.g. 0,2,4"
            )
        return levels

    @property
    def level_weights(self) -> tuple[float, ...]:
        """--pyramid-weights as numbers (empty: 1 per level); a non-number is a ConfigError."""
        try:
            return tuple(float(w) for w in self.pyramid_weights.split(",") if w.strip())
        except ValueError:
            raise ConfigError(
                f"{ref('pyramid_weights')} {self.pyramid_weights!r} is not a list of numbers; "
                "give e.g. 1,1,2,4"
            ) from None

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
