"""The four sections of a run's configuration, with the paper's defaults: the networks
and the data here, training and monitoring in `config.training`.

Each field's docstring is its `--help` text; its flag is its name in kebab-case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pix2pix.config.choices import (
    PREPROCESS_STEPS,
    CacheMode,
    ColorSpace,
    Direction,
    Labels,
    Layout,
    Norm,
    OutputDepth,
    Preprocess,
    Resize,
    Upsample,
    WhereAdd,
)
from pix2pix.config.fields import RUNTIME, at_least, check_fields, choice, ref
from pix2pix.config.training import MonitorConfig, TrainConfig
from pix2pix.errors import ConfigError
from pix2pix.palette import palette_setting


@dataclass(frozen=True)
class ModelConfig:
    """The networks: what `pix2pix translate` needs to rebuild the generator."""

    method: str = "pix2pix"
    """Training method (`pix2pix.methods`): pix2pix (the paper's), bicyclegan (many
    outputs per input, from a latent code) or oasis (label maps: a per-pixel segmentation
    D); recorded in the checkpoint, where every command reads it."""
    generator: str = "unet_256"
    """Generator: unet_<S> (S = 32..1024, the paper's U-Net with log2(S) downsamplings),
    encdec_<S> (the same without skips), resnet_6blocks, resnet_9blocks, spade_<S> or
    spade (SPADE, label inputs only; spade: spade_<crop size>)."""
    discriminator: str = "patch_70"
    """PatchGAN by receptive field: patch_1 (PixelGAN), patch_16, patch_34, patch_70,
    patch_142, patch_286 (the paper's ImageGAN-sized one at 256x256); oasis: the oasis
    method's per-pixel (classes + fake) segmenter."""
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

    nz: int | None = None
    """Size of the latent code z the generator takes beside the image (a U-Net only); 0:
    none (the paper's generator); None: the method's (pix2pix 0, bicyclegan 8)."""
    where_add: WhereAdd = "all"
    """Where the U-Net takes z: input (tiled onto the image) or all (onto the input of
    every encoder level; the official BicycleGAN default)."""
    nef: int = 64
    """Width of the latent encoder (bicyclegan's E, filters in its first layer)."""
    labels: Labels = "none"
    """What the input holds: none (an image), palette (a colour-coded label map, each
    pixel the class of the nearest --palette colour) or index (one-channel class ids
    0..--num-classes - 1); label inputs are one-hot encoded inside the model."""
    num_classes: int | None = None
    """Classes of --labels index maps (palette: the palette's size, set by itself)."""

    def __post_init__(self) -> None:
        from pix2pix.nets import DISCRIMINATORS, GENERATORS

        choice(self, "generator", (*GENERATORS, "spade"))
        choice(self, "discriminator", tuple(DISCRIMINATORS))
        check_fields(self)
        for name in ("in_channels", "out_channels"):
            value = getattr(self, name)
            if value is not None:
                at_least(self, name, 1)
        for name in ("ngf", "ndf", "nef"):
            at_least(self, name, 1)
        if self.nz is not None:
            at_least(self, "nz", 0)
        if self.nz and not self.generator.startswith(("unet_", "encdec_", "spade")):
            raise ConfigError(f"{ref('nz')} {self.nz} needs a U-Net or SPADE generator")
        self._check_labels()
        if self.upsample != "transpose" and not self.generator.startswith(("unet_", "encdec_")):
            raise ConfigError(f"{ref('upsample')} {self.upsample} is for U-Nets; use transpose")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{ref('dropout')} {self.dropout} is out of range; use 0 <= p < 1")
        at_least(self, "init_std", 0.0)
        if not 1 <= self.d_scales <= 4:
            raise ConfigError(f"{ref('d_scales')} {self.d_scales} is out of range; use 1..4")

    def _check_labels(self) -> None:
        if self.num_classes is not None:
            at_least(self, "num_classes", 1)
            if self.num_classes > 255:
                raise ConfigError(f"{ref('num_classes')} {self.num_classes}: at most 255")
        uses = [
            n
            for n in ("generator", "discriminator")
            if getattr(self, n).startswith(("spade", "oasis"))
        ]
        if self.labels == "none" and (uses or self.method == "oasis"):
            what = f"{ref(uses[0])} {getattr(self, uses[0])}" if uses else f"{ref('method')} oasis"
            raise ConfigError(f"{what} reads label maps; use {ref('labels')} palette or index")


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs are and how they are augmented."""

    root: str = field(default="", metadata=RUNTIME)
    """Dataset folder: aligned A|B images, or A/ and B/ subfolders with matching names.
    A subfolder named after --split is used when present (facades/ -> facades/train/)."""
    split: str = "train"
    """Subfolder of --data to train on, when it exists."""
    layout: Layout = "auto"
    """aligned: each file holds A and B side by side; paired: A/ and B/ folders; inputs:
    each file is an input alone (no target: for --method distill); auto."""
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


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "monitor": MonitorConfig,
}
