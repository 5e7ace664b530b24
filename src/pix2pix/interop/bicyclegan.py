"""Import of models written by the official BicycleGAN code (junyanz/BicycleGAN).

Its generators are U-Nets that take the code z at the input (`G_Unet_add_input`) or at
every encoder level (`G_Unet_add_all`), its encoder a ResNet with a VAE head
(`E_ResNet`); both are read with `torch.load(weights_only=True)` and mapped onto
`nets.UNet` (nz, z_at) and `nets.encoder.LatentEncoder`. Everything is inferred from the
tensors: where z is added, nz (from the widths where z joins below the input, else from
the encoder, else --nz), depth (unet_<2**depth>), ngf, the channels; the encoder's depth,
width and nz. Instance norm (the official default) carries no tensors, so it is assumed
unless --norm says otherwise. Two layout differences are undone: the official blocks
concatenate [decoder, skip] where ours concatenate [skip, decoder] (each decoder conv's
input halves are swapped), and the official encoder pools a fixed 8x8 window where ours
averages the map (the same at the official sizes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from pix2pix.config import DataConfig, ModelConfig, RunConfig
from pix2pix.errors import ConfigError, UserError, setting
from pix2pix.interop.official import check_out, convert, read_state_dict, write_imported
from pix2pix.methods.bicyclegan import build_encoder
from pix2pix.nets import build_generator
from pix2pix.nets.unet import UNet

DEFAULT_NZ = 8  # the official default, for an input-z generator imported without its E


def _level_prefix(level: int, where: str) -> str:
    """The official module path of U-Net level `level` (0: outermost): add_all blocks
    keep their inner block as `submodule`; add_input ones in their Sequential, at index 1
    in the outermost block (conv, block, ...) and 3 below it (act, conv, norm, block, ...)."""
    if where == "all":
        return "model." + "submodule." * level
    return "model.model." + "".join("1.model." if i == 0 else "3.model." for i in range(level))


def _unet_map(depth: int, where: str) -> dict[str, str]:
    """Our module -> the official module, for every conv of a depth-`depth` U-Net."""
    out = {}
    for i in range(depth):
        p = _level_prefix(i, where)
        inner = i == depth - 1
        if where == "all":
            down, up = f"{p}down.{0 if i == 0 else 1}", f"{p}up.1"
        else:
            down, up = f"{p}{0 if i == 0 else 1}", f"{p}{3 if i == 0 or inner else 5}"
        out[f"encoder.{i}.{0 if i == 0 else 1}"] = down
        out[f"decoder.{i}.1"] = up
    return out


def infer_bicyclegan_generator(state: dict[str, torch.Tensor], nz: int | None) -> dict[str, Any]:
    """The ModelConfig fields of an official BicycleGAN generator state dict."""
    if "model.down.0.weight" in state:
        where = "all"
    elif "model.model.0.weight" in state:
        where = "input"
    else:
        raise UserError("not a BicycleGAN U-Net generator (no model.down.0 or model.model.0)")
    convs = [k for k, v in state.items() if k.endswith(".weight") and v.ndim == 4]
    depth = len(convs) // 2
    if len(convs) != 2 * depth or len(state) != 2 * len(convs):
        raise UserError(
            "has tensors besides conv weights and biases (a norm with parameters, or "
            "bilinear upsampling); only instance-norm, upsample-basic models are read"
        )
    first = state[f"{_level_prefix(0, where)}{'down.0' if where == 'all' else '0'}.weight"]
    ngf = int(first.shape[0])
    if where == "all":
        nz = int(state[f"{_level_prefix(1, where)}down.1.weight"].shape[1]) - ngf
    nz = DEFAULT_NZ if nz is None else nz
    up = state[f"{_level_prefix(0, where)}{'up.1' if where == 'all' else '3'}.weight"]
    return {
        "method": "bicyclegan",
        "generator": f"unet_{2**depth}",
        "in_channels": int(first.shape[1]) - nz,
        "out_channels": int(up.shape[1]),
        "ngf": ngf,
        "nz": nz,
        "where_add": where,
        "dropout": 0.0,
    }


def _encoder_map(blocks: int) -> dict[str, str]:
    out = {"stem": "conv.0", "mu": "fc.0", "logvar": "fcVar.0"}
    for n in range(1, blocks + 1):
        out[f"blocks.{n - 1}.skip.1"] = f"conv.{n}.shortcut.1"
        for k in (2, 5):  # renamed by _encoder_state
            out[f"blocks.{n - 1}.body.{k}"] = f"blocks.{n - 1}.body.{k}"
    return out


def _encoder_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """The official E's tensors renamed so that `_encoder_map` reaches each conv (its
    first 3x3 conv sits at an index that depends on the norm), and its block count."""
    renamed = {}
    for key, value in state.items():
        m = re.fullmatch(r"conv\.(\d+)\.conv\.(\d+)(\.0)?\.(weight|bias)", key)
        if m:  # conv.N.conv.K: the first 3x3 conv; conv.N.conv.K.0: the pooled one
            key = f"blocks.{int(m[1]) - 1}.body.{5 if m[3] else 2}.{m[4]}"
        renamed[key] = value
    blocks = len([k for k in state if re.fullmatch(r"conv\.\d+\.shortcut\.1\.weight", k)])
    return renamed, blocks


def import_bicyclegan(
    generator: str | Path,
    out: str | Path,
    *,
    encoder: str | Path | None = None,
    direction: str = "AtoB",
    nz: int | None = None,
    norm: str = "instance",
    overwrite: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Write a pix2pix checkpoint (method bicyclegan) from official G (and E) state dicts;
    returns the folder and the inferred settings."""
    generator = Path(generator)
    g_state = read_state_dict(generator)
    e_state, blocks = None, 0
    if encoder is not None:
        e_state, blocks = _encoder_state(read_state_dict(Path(encoder)))
        if "mu.weight" in e_state or "fc.0.weight" not in e_state or not blocks:
            raise UserError(f"{encoder}: not a BicycleGAN E_ResNet state dict (no fc.0, fcVar.0)")
        e_nz = int(e_state["fc.0.weight"].shape[0])
        if nz is not None and nz != e_nz:
            raise UserError(f"{setting('--nz')} {nz}, but {encoder} encodes {e_nz} values")
        nz = e_nz
    try:
        fields = infer_bicyclegan_generator(g_state, nz)
    except UserError as exc:
        raise UserError(f"{generator}: {exc}") from None
    if fields["in_channels"] < 1:
        raise UserError(f"{generator}: {setting('--nz')} {nz} leaves no input channels")
    fields["norm"] = norm
    crop = 2 ** (blocks + 4) if blocks else 256  # the size the encoder was built for
    if e_state is not None:
        fields["nef"] = int(e_state["conv.0.weight"].shape[0])
    try:
        data = DataConfig(
            direction=direction, crop_size=crop, load_size=max(crop, crop * 286 // 256)
        )
        config = RunConfig(model=ModelConfig(**fields), data=data)
    except (ConfigError, TypeError) as exc:
        raise UserError(f"{generator}: {exc}") from None
    g = build_generator(config.model, init=False)
    assert isinstance(g, UNet)
    depth = g.depth
    state = convert(g_state, g, _unet_map(depth, fields["where_add"]), generator)
    for i in range(depth - 1):  # official [decoder, skip] -> ours [skip, decoder]
        w = state[f"decoder.{i}.1.weight"]
        half = w.shape[0] // 2
        state[f"decoder.{i}.1.weight"] = torch.cat([w[half:], w[:half]])
    g.load_state_dict(state)
    modules: dict[str, torch.nn.Module] = {"generator": g}
    if e_state is not None:
        e = build_encoder(config)
        e.load_state_dict(convert(e_state, e, _encoder_map(blocks), Path(encoder or "")))
        modules["encoder"] = e
    check_out(Path(out), [p for p in (generator, encoder) if p is not None], overwrite)
    source = {
        "generator": str(generator),
        "format": "BicycleGAN",
        "encoder": str(encoder) if encoder else None,
    }
    write_imported(Path(out), config, modules, {"imported_from": source})
    return Path(out), {**fields, "encoder": f"{blocks} blocks" if blocks else None}
