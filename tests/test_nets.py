"""Networks: shapes and ranges of every variant, published sizes, receptive fields, init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pix2pix.config import ModelConfig
from pix2pix.nets import (
    DISCRIMINATOR_LAYERS,
    GENERATORS,
    build_discriminator,
    build_generator,
    receptive_field,
)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_config(**kw) -> ModelConfig:
    return ModelConfig(**{"in_channels": 3, "out_channels": 3, **kw})


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_maps_shape_and_range(name: str) -> None:
    labels = {"labels": "index", "num_classes": 5} if name.startswith("spade") else {}
    cfg = model_config(generator=name, ngf=4, in_channels=1, out_channels=3, **labels)
    g = build_generator(cfg)
    size = g.stride if name.startswith(("unet", "encdec", "spade")) else 24
    x = (
        torch.randint(0, 5, (2, 1, size, size)) / 127.5 - 1
        if labels
        else torch.rand(2, 1, size, size) * 2 - 1
    )
    y = g(x)
    assert y.shape == (2, 3, size, size)
    assert y.min() >= -1 and y.max() <= 1
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", list(DISCRIMINATOR_LAYERS))
@pytest.mark.parametrize("conditional", [True, False])
def test_every_discriminator_gives_patch_logits(name: str, conditional: bool) -> None:
    cfg = model_config(discriminator=name, ndf=4, conditional=conditional, in_channels=1)
    d = build_discriminator(cfg)
    channels = 4 if conditional else 3
    assert d.net[0].in_channels == channels
    size = 320 if name == "patch_286" else 64
    out = d(torch.randn(2, channels, size, size))
    assert out.shape[:2] == (2, 1) and out.shape[2] >= 1
    if name == "patch_1":  # the PixelGAN judges every pixel
        assert out.shape[2:] == (size, size)


def test_published_parameter_counts() -> None:
    cfg = model_config(generator="unet_256", discriminator="patch_70")
    assert count(build_generator(cfg, init=False)) == 54_413_955
    assert count(build_discriminator(cfg, init=False)) == 2_768_705


def test_unet_128_and_resnet_sizes_match_the_reference_code() -> None:
    # The reference code's unet_128 (batch norm), and its resnet_9blocks with instance
    # norm as CycleGAN uses it (11.378 M in that code's log).
    assert count(build_generator(model_config(generator="unet_128"), init=False)) == 41_828_995
    resnet = model_config(generator="resnet_9blocks", norm="instance")
    assert count(build_generator(resnet, init=False)) == 11_378_179


def test_encoder_decoder_has_no_skips() -> None:
    unet = build_generator(model_config(generator="unet_64", ngf=4))
    encdec = build_generator(model_config(generator="encdec_64", ngf=4))
    assert count(encdec) < count(unet)
    # without skips the decoder's input channels equal the encoder's output channels
    for enc, dec in zip(encdec.encoder, encdec.decoder):
        conv_in = next(m for m in dec if isinstance(m, nn.ConvTranspose2d)).in_channels
        conv_out = next(m for m in enc if isinstance(m, nn.Conv2d)).out_channels
        assert conv_in == conv_out


def test_unet_dropout_only_in_intermediate_512_blocks() -> None:
    for name, expected in (("unet_256", 3), ("unet_128", 2), ("unet_32", 0)):
        g = build_generator(model_config(generator=name, ngf=4))
        drops = [m for m in g.modules() if isinstance(m, nn.Dropout)]
        assert len(drops) == expected, name
        assert all(m.p == 0.5 for m in drops)
    assert not any(
        isinstance(m, nn.Dropout)
        for m in build_generator(model_config(dropout=0.0, ngf=4)).modules()
    )


def test_unet_norm_placement_follows_the_paper() -> None:
    g = build_generator(model_config(generator="unet_256", ngf=4))
    has_norm = [any(isinstance(m, nn.BatchNorm2d) for m in block) for block in g.encoder]
    assert has_norm == [False] + [True] * 6 + [False]  # none on first and innermost
    for block in g.encoder:
        conv = next(m for m in block if isinstance(m, nn.Conv2d))
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2)
    assert isinstance(g.decoder[0][-1], nn.Tanh)


def _measured_receptive_field(d: nn.Module, size: int) -> int:
    """Extent of input pixels that reach the centre logit, measured by backprop."""
    for m in d.modules():
        if isinstance(m, nn.Conv2d):  # positive weights: no cancellation inside the field
            nn.init.constant_(m.weight, 1.0 / m.weight[0].numel())
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    x = torch.ones(1, d.net[0].in_channels, size, size, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0].abs().sum(0).sum(1))
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("name", list(DISCRIMINATOR_LAYERS))
def test_patchgan_receptive_fields(name: str) -> None:
    expected = int(name.split("_")[1])
    d = build_discriminator(model_config(discriminator=name, ndf=2, norm="none"))
    assert receptive_field(d) == expected
    assert _measured_receptive_field(d, size=expected + 96) == expected
    assert DISCRIMINATOR_LAYERS[name] == [1, 16, 34, 70, 142, 286].index(expected)


def test_init_is_normal_0_002() -> None:
    torch.manual_seed(0)
    g = build_generator(model_config(generator="unet_256"))
    weights = torch.cat(
        [m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    )
    assert abs(weights.mean().item()) < 1e-3
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert bn.mean().item() == pytest.approx(1.0, abs=0.01)
    biases = [m.bias for m in g.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert all(b is None or not b.any() for b in biases)


def test_instance_and_no_norm_use_conv_bias() -> None:
    for norm in ("instance", "none"):
        g = build_generator(model_config(generator="unet_32", ngf=4, norm=norm))
        convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
        assert all(c.bias is not None for c in convs)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())


def test_spectral_norm_bounds_every_discriminator_convolution() -> None:
    from pix2pix.config import ModelConfig
    from pix2pix.nets import build_discriminator

    cfg = ModelConfig(in_channels=3, out_channels=3, ndf=8, spectral_norm=True)
    torch.manual_seed(0)
    d = build_discriminator(cfg).train()
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    with torch.no_grad():
        for _ in range(30):  # power iteration runs once per training forward
            d(torch.randn(1, 6, 70, 70))
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
    plain = build_discriminator(ModelConfig(in_channels=3, out_channels=3, ndf=8))
    assert not any(nn.utils.parametrize.is_parametrized(m) for m in plain.modules())
