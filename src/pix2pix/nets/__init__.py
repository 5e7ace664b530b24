"""Network factories: explicit tables from a config name to a constructor.

Every network is a plain `nn.Module` that knows nothing of training or files. Generators
expose `stride`: input height and width must be multiples of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from torch import nn

from pix2pix.nets.layers import init_weights
from pix2pix.nets.patchgan import (
    MultiScaleDiscriminator,
    PatchDiscriminator,
    coarsest_side,
    min_input_size,
    receptive_field,
)
from pix2pix.nets.resnet import ResNetGenerator
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


# unet_<S>: log2(S) downsamplings, so an SxS input reaches a 1x1 bottleneck.
GENERATORS: dict[str, GeneratorFactory] = {
    **{f"unet_{2**d}": _unet(d, skips=True) for d in range(5, 11)},
    **{f"encdec_{2**d}": _unet(d, skips=False) for d in range(5, 11)},
    "resnet_6blocks": _resnet(6),
    "resnet_9blocks": _resnet(9),
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
DISCRIMINATORS = tuple(DISCRIMINATOR_LAYERS)


def _channels(cfg: NetSpec) -> tuple[int, int]:
    if cfg.in_channels is None or cfg.out_channels is None:
        raise ValueError("ModelConfig channels are unresolved; set in_channels/out_channels")
    return cfg.in_channels, cfg.out_channels


def build_generator(cfg: NetSpec, init: bool = True) -> nn.Module:
    """The generator named by `cfg.generator`, initialised N(0, cfg.init_std) if `init`."""
    c_in, c_out = _channels(cfg)
    upsample = getattr(cfg, "upsample", "transpose")
    nz = getattr(cfg, "nz", 0)  # a latent code beside the image (U-Nets: nz, z_at)
    z = {"nz": nz, "z_at": getattr(cfg, "where_add", "all")} if nz else {}
    net = GENERATORS[cfg.generator](c_in, c_out, cfg.ngf, cfg.norm, cfg.dropout, upsample, **z)
    if init:
        init_weights(net, cfg.init_std)
    return net


def build_discriminator(cfg: NetSpec, init: bool = True) -> nn.Module:
    """The PatchGAN named by `cfg.discriminator`; conditional ones see input and output."""
    c_in, c_out = _channels(cfg)
    channels = c_in + c_out if cfg.conditional else c_out
    layers, scales = DISCRIMINATOR_LAYERS[cfg.discriminator], getattr(cfg, "d_scales", 1)
    net: nn.Module
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
    "MultiScaleDiscriminator",
    "NetSpec",
    "PatchDiscriminator",
    "ResNetGenerator",
    "UNet",
    "build_discriminator",
    "build_generator",
    "coarsest_side",
    "init_weights",
    "min_input_size",
    "receptive_field",
]
