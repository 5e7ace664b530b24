"""Network factories: explicit tables from a config name to a constructor.

Every network is a plain `nn.Module` that knows nothing of training or files. Generators
expose `stride`: input height and width must be multiples of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from torch import nn

from pix2pix.nets.labels import LabelGenerator, LabelMap
from pix2pix.nets.layers import init_weights
from pix2pix.nets.oasis import OASISDiscriminator
from pix2pix.nets.patchgan import (
    MultiScaleDiscriminator,
    PatchDiscriminator,
    coarsest_side,
    min_input_size,
    receptive_field,
)
from pix2pix.nets.resnet import ResNetGenerator
from pix2pix.nets.spade import SPADEGenerator
from pix2pix.nets.unet import UNet


class NetSpec(Protocol):
    """What the builders read (`pix2pix.config.ModelConfig` has it; nets never import it)."""

    generator: str
    discriminator: str
    in_channels: int | None
    out_channels: int | None
    ngf: int
    ndf: int
    norm: str
    dropout: float
    conditional: bool
    init_std: float
    spectral_norm: bool
    upsample: str
    d_scales: int


# A generator from plain arguments: (in_channels, out_channels, ngf, norm, dropout,
# upsample).
GeneratorFactory = Callable[[int, int, int, str, float, str], nn.Module]


def _unet(depth: int, skips: bool) -> GeneratorFactory:
    def build(
        c_in: int, c_out: int, ngf: int, norm: str, dropout: float, upsample: str, **z: object
    ) -> nn.Module:
        return UNet(c_in, c_out, depth, ngf, norm, dropout, skips, upsample, **z)  # type: ignore[arg-type]

    return build


def _resnet(blocks: int) -> GeneratorFactory:
    def build(c_in: int, c_out: int, ngf: int, norm: str, dropout: float, upsample: str):
        # dropout in every block, between its convs: the official pix2pix default
        return ResNetGenerator(c_in, c_out, blocks, ngf, norm, dropout=dropout)

    return build


def _spade(levels: int) -> GeneratorFactory:
    def build(
        c_in: int, c_out: int, ngf: int, norm: str, dropout: float, upsample: str, **z: object
    ) -> nn.Module:
        return SPADEGenerator(c_in, c_out, levels, ngf, norm, nz=int(z.get("nz", 0)))  # type: ignore[call-overload]

    return build


# generators that take a one-hot label map (a label model's `labels: palette|index`)
LABEL_GENERATORS = tuple(f"spade_{2**d}" for d in range(5, 11))

# unet_<S>: log2(S) downsamplings, so an SxS input reaches a 1x1 bottleneck.
GENERATORS: dict[str, GeneratorFactory] = {
    **{f"unet_{2**d}": _unet(d, skips=True) for d in range(5, 11)},
    **{f"encdec_{2**d}": _unet(d, skips=False) for d in range(5, 11)},
    "resnet_6blocks": _resnet(6),
    "resnet_9blocks": _resnet(9),
    # spade_<S>: SxS crops start from the 4x4 label map (log2(S) - 2 upsamplings)
    **{f"spade_{2**d}": _spade(d - 2) for d in range(5, 11)},
}

# patch_<N>: the receptive field N of one output logit -> number of stride-2 layers.
DISCRIMINATOR_LAYERS: dict[str, int] = {
    "patch_1": 0,
    "patch_16": 1,
    "patch_34": 2,
    "patch_70": 3,
    "patch_142": 4,
    "patch_286": 5,
}
# oasis: a per-pixel (N + 1)-class segmenter (the oasis method's D), not a PatchGAN
DISCRIMINATORS = (*DISCRIMINATOR_LAYERS, "oasis")


def _channels(cfg: NetSpec) -> tuple[int, int]:
    if cfg.in_channels is None or cfg.out_channels is None:
        raise ValueError("ModelConfig channels are unresolved; set in_channels/out_channels")
    return cfg.in_channels, cfg.out_channels


def build_generator(
    cfg: NetSpec, init: bool = True, colors: Sequence[Sequence[int]] | None = None
) -> nn.Module:
    """The generator named by `cfg.generator`, initialised N(0, cfg.init_std) if `init`.

    A label model (`cfg.labels` palette or index) reads its input through a `LabelMap`
    (palette: `colors`, one RGB triple per class) and the generator takes the one-hot map.
    """
    c_in, c_out = _channels(cfg)
    upsample = getattr(cfg, "upsample", "transpose")
    nz = getattr(cfg, "nz", 0)  # a latent code beside the image (U-Nets: nz, z_at)
    z = {"nz": nz, "z_at": getattr(cfg, "where_add", "all")} if nz else {}
    labels = getattr(cfg, "labels", "none")
    if labels != "none":
        c_in = int(getattr(cfg, "num_classes", 0) or 0)
    net = GENERATORS[cfg.generator](c_in, c_out, cfg.ngf, cfg.norm, cfg.dropout, upsample, **z)
    if init:
        init_weights(net, cfg.init_std)
    if labels != "none":
        net = LabelGenerator(LabelMap(c_in, colors if labels == "palette" else None), net)
    return net


def build_discriminator(cfg: NetSpec, init: bool = True) -> nn.Module:
    """The PatchGAN named by `cfg.discriminator`; conditional ones see input and output."""
    c_in, c_out = _channels(cfg)
    if cfg.discriminator == "oasis":  # sees the image alone; the labels are its classes
        classes = int(getattr(cfg, "num_classes", 0) or 0)
        net: nn.Module = OASISDiscriminator(c_out, classes, cfg.ndf)
        if init:
            init_weights(net, cfg.init_std)
        return net
    channels = c_in + c_out if cfg.conditional else c_out
    layers, scales = DISCRIMINATOR_LAYERS[cfg.discriminator], getattr(cfg, "d_scales", 1)
    if scales > 1:
        net = MultiScaleDiscriminator(scales, channels, layers, cfg.ndf, cfg.norm)
    else:  # the paper's single PatchGAN (its state-dict keys unchanged)
        net = PatchDiscriminator(channels, layers, cfg.ndf, cfg.norm)
    if init:
        init_weights(net, cfg.init_std)
    if getattr(cfg, "spectral_norm", False):  # after init: it normalises the drawn weights
        for module in list(net.modules()):
            if isinstance(module, nn.Conv2d):
                nn.utils.parametrizations.spectral_norm(module)
    return net


__all__ = [
    "DISCRIMINATORS",
    "DISCRIMINATOR_LAYERS",
    "GENERATORS",
    "LABEL_GENERATORS",
    "LabelGenerator",
    "LabelMap",
    "MultiScaleDiscriminator",
    "NetSpec",
    "OASISDiscriminator",
    "PatchDiscriminator",
    "ResNetGenerator",
    "SPADEGenerator",
    "UNet",
    "build_discriminator",
    "build_generator",
    "coarsest_side",
    "init_weights",
    "min_input_size",
    "receptive_field",
]
