"""Checkpoints of the official pytorch-CycleGAN-and-pix2pix code, imported.

The official code saves `net.state_dict()` with `torch.save` (`latest_net_G.pth`): a
zip-pickle of tensors, read here with `torch.load(weights_only=True)` only. Nothing in
the file says which network it is, so the architecture is inferred from the tensors:

- U-Net (`unet_128`, `unet_256`, ...): nested `UnetSkipConnectionBlock`s, level i at
  `model.model.` + `1.model.` + `3.model.` * (i - 1); the depth is the nesting depth;
- ResNet (`resnet_6blocks`, `resnet_9blocks`): `model.K` layers, `ResnetBlock`s at
  `model.K.conv_block.J`; a block's second conv at J = 6 means dropout was on, at
  J = 5 off (`nets.resnet.blocks_have_dropout`);
- PatchGAN (`basic`, `n_layers`) and PixelGAN (`pixel`) discriminators: `model.K`, the
  depth from the number of convolutions, 1x1 kernels for the PixelGAN.

Widths and channels come from the first and last convolutions; the norm from what the
file holds: running statistics (batch), conv biases without them (instance: the
official instance norm has no parameters), neither (none: the official code then uses
no conv biases, where ours has zero ones). Dropout in a U-Net leaves no trace in a state
dict: it defaults to the official pix2pix default (on). A 1 -> 2 channel generator is
the official colorization model (L* -> a*b*): imported as `color_space: lab`. Prefixes
from DataParallel (`module.`) and torch.compile (`_orig_mod.`) are removed; a missing
`num_batches_tracked` (files from PyTorch < 0.4.1) is taken as 0.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from pix2pix.checkpoint import CONFIG_FILE, FORMAT, Progress, load_tensors, save_checkpoint
from pix2pix.config import DataConfig, ModelConfig, RunConfig
from pix2pix.config.sections import ColorSpace
from pix2pix.errors import ConfigError, UserError, setting
from pix2pix.fileio import check_replaceable, first_missing, remove_if_empty
from pix2pix.nets import DISCRIMINATOR_LAYERS, build_discriminator, build_generator
from pix2pix.nets.resnet import blocks_have_dropout

PREFIXES = ("module.", "_orig_mod.")
RESNET_BLOCKS = (6, 9)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of an official `.pth` (weights_only: no code is ever unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; check the path")
    state = load_tensors(
        path,
        "not a readable PyTorch file",
        "(it could run code when loaded); it was not loaded. Give a state dict saved "
        "with torch.save(net.state_dict())",
    )
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: not a state dict of tensors; give the official latest_net_G.pth")
    clean = {}
    for key, value in state.items():
        while key.startswith(PREFIXES):
            key = key.split(".", 1)[1]
        clean[key] = value
    return clean


def _norm(state: dict[str, torch.Tensor], bias_key: str) -> str:
    if any(k.endswith("running_mean") for k in state):
        return "batch"
    return "instance" if bias_key in state else "none"


# --- generators -------------------------------------------------------------------------


def _unet_prefix(level: int) -> str:
    return "model.model." if level == 0 else "model.model.1.model." + "3.model." * (level - 1)


def unet_depth(state: dict[str, torch.Tensor]) -> int:
    depth = 1
    while any(k.startswith(_unet_prefix(depth)) for k in state):
        depth += 1
    return depth


def unet_keys(depth: int) -> dict[str, str]:
    """Our U-Net's module prefixes -> the official ones (conv and norm layers)."""
    keys = {"encoder.0.0": _unet_prefix(0) + "0", "decoder.0.1": _unet_prefix(0) + "3"}
    for i in range(1, depth):
        p = _unet_prefix(i)
        if i < depth - 1:
            keys.update(
                {
                    f"encoder.{i}.1": p + "1",
                    f"encoder.{i}.2": p + "2",
                    f"decoder.{i}.1": p + "5",
                    f"decoder.{i}.2": p + "6",
                }
            )
        else:  # innermost: no norm after its down conv, no submodule
            keys.update(
                {f"encoder.{i}.1": p + "1", f"decoder.{i}.1": p + "3", f"decoder.{i}.2": p + "4"}
            )
    return keys


def resnet_keys(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Our ResNet's prefixes -> the official ones: the same layer indices, `body` for
    `conv_block`."""
    keys = {}
    for key in state:
        module = key.rsplit(".", 1)[0]
        keys["net." + module[len("model.") :].replace("conv_block", "body")] = module
    return keys


def infer_generator(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """ModelConfig fields of an official generator state dict."""
    if "model.model.0.weight" in state:
        depth = unet_depth(state)
        first, last = state["model.model.0.weight"], state["model.model.3.weight"]
        return {
            "generator": f"unet_{2**depth}",
            "ngf": int(first.shape[0]),
            "in_channels": int(first.shape[1]),
            "out_channels": int(last.shape[1]),  # a transposed conv: (in, out, k, k)
            "norm": _norm(state, _unet_prefix(1) + "1.bias"),
            "dropout": 0.5,
        }
    blocks = sorted(
        {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block", k))}
    )
    if "model.1.weight" in state and blocks:
        convs = [k for k in state if re.fullmatch(r"model\.\d+\.weight", k) and state[k].ndim == 4]
        last = max(convs, key=lambda k: int(k.split(".")[1]))  # the output conv
        dropout = blocks_have_dropout({k: tuple(v.shape) for k, v in state.items()})
        if dropout is None:
            raise UserError("a ResNet generator whose blocks are not the official layout")
        if len(blocks) not in RESNET_BLOCKS:
            raise UserError(f"a ResNet generator with {len(blocks)} blocks; pix2pix has 6 or 9")
        return {
            "generator": f"resnet_{len(blocks)}blocks",
            "ngf": int(state["model.1.weight"].shape[0]),
            "in_channels": int(state["model.1.weight"].shape[1]),
            "out_channels": int(state[last].shape[0]),
            "norm": _norm(state, "model.1.bias"),
            "dropout": 0.5 if dropout else 0.0,
        }
    first = next(iter(state), None)
    raise UserError(
        "not an official U-Net or ResNet generator: "
        + (f"the first key is {first!r} {tuple(state[first].shape)}" if first else "no tensors")
        + "; expected model.model.0.weight or model.1.weight"
    )


# --- discriminators ---------------------------------------------------------------------


def infer_discriminator(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The discriminator's layers (0: PixelGAN), width, input channels and norm."""
    convs = [k for k in state if k.endswith(".weight") and state[k].ndim == 4]
    other = [k for k in convs if not re.fullmatch(r"model\.\d+\.weight", k)]
    if not convs or other:  # a PatchGAN is one flat Sequential: model.K.weight only
        first = other[0] if other else next(iter(state), "nothing")
        raise UserError(
            f"not an official PatchGAN discriminator: it holds {first!r} (a generator's "
            "file?); give the latest_net_D.pth trained with this generator"
        )
    convs.sort(key=lambda k: int(k.split(".")[1]))
    first = state[convs[0]]
    pixel = first.shape[-1] == 1
    odd = [k for k in convs if state[k].shape[-1] != (1 if pixel else 4) or "conv_block" in k]
    if odd:
        raise UserError(
            f"not an official PatchGAN discriminator: {odd[0]} {tuple(state[odd[0]].shape)} "
            "(PatchGANs have only 4x4 convolutions, PixelGANs 1x1)"
        )
    return {
        "layers": 0 if pixel else len(convs) - 2,
        "ndf": int(first.shape[0]),
        "channels": int(first.shape[1]),
        "norm": _norm(state, convs[1].replace("weight", "bias")) if len(convs) > 1 else "none",
    }


def patch_keys(state: dict[str, torch.Tensor]) -> dict[str, str]:
    return {"net." + k.rsplit(".", 1)[0][len("model.") :]: k.rsplit(".", 1)[0] for k in state}


# --- conversion -------------------------------------------------------------------------


def convert(
    state: dict[str, torch.Tensor], ours: torch.nn.Module, prefixes: dict[str, str], source: Path
) -> dict[str, torch.Tensor]:
    """`ours`'s state dict filled from the official `state` by `prefixes` (ours ->
    theirs). Shapes must agree; every official tensor must be used."""
    used = set()
    out = {}
    for key, mine in ours.state_dict().items():
        module, name = key.rsplit(".", 1)
        theirs = f"{prefixes.get(module, '?')}.{name}"
        if theirs in state:
            value = state[theirs]
            if tuple(value.shape) != tuple(mine.shape):
                raise UserError(
                    f"{source}: {theirs} has shape {tuple(value.shape)} where the inferred "
                    f"network needs {tuple(mine.shape)}; check the flags that override it"
                )
            out[key] = value.to(mine.dtype)
            used.add(theirs)
        elif name == "num_batches_tracked" or name == "bias":
            out[key] = torch.zeros_like(mine)  # an old file; or no-norm convs without bias
        else:
            raise UserError(f"{source}: has no {theirs} for our {key}; not this architecture")
    unmapped = [k for k in state if k not in used]
    if unmapped:
        k = unmapped[0]
        raise UserError(
            f"{source}: cannot map {k} {tuple(state[k].shape)} onto the inferred network; "
            "check the flags that override the inference"
        )
    return out


# --- the import ---------------------------------------------------------------------------


def import_official(
    generator: Path,
    out: Path,
    *,
    discriminator: Path | None = None,
    direction: str = "AtoB",
    overrides: dict[str, Any] | None = None,
    color_space: ColorSpace | None = None,
    overwrite: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Convert an official G (and D) into a checkpoint folder at `out`; returns it and
    what was inferred (ModelConfig fields, `overrides` applied on top, and `color_space`).

    color_space: None infers it: lab for a 1 -> 2 channel generator (the official
    colorization model: L* in, a*b* out, scaled as ours are), else rgb."""
    g_state = read_state_dict(generator)
    try:
        fields = {**infer_generator(g_state), **(overrides or {})}
    except UserError as exc:
        raise UserError(f"{generator}: {exc}") from None
    color_space = color_space or infer_color_space(fields)
    if color_space == "lab" and infer_color_space(fields) != "lab":
        raise UserError(
            f"{generator}: {setting('--color-space')} lab needs a 1 -> 2 channel generator (L* -> "
            "a*b*), "
            f"this one maps {fields['in_channels']} -> {fields['out_channels']}; use rgb"
        )
    if discriminator is not None:
        d_state = read_state_dict(discriminator)
        try:
            d = infer_discriminator(d_state)
        except UserError as exc:
            raise UserError(f"{discriminator}: {exc}") from None
        names = {n: k for k, n in DISCRIMINATOR_LAYERS.items()}
        if d["layers"] not in names:
            raise UserError(f"{discriminator}: a PatchGAN with {d['layers']} layers; use 0..5")
        both = fields["in_channels"] + fields["out_channels"]
        if d["channels"] not in (both, fields["out_channels"]):
            raise UserError(
                f"{discriminator}: sees {d['channels']} channels, but the generator maps "
                f"{fields['in_channels']} to {fields['out_channels']}; not its discriminator"
            )
        fields = {
            **fields,
            "discriminator": names[d["layers"]],
            "ndf": d["ndf"],
            "conditional": d["channels"] == both,
        }
    try:
        model = ModelConfig(**fields)
        config = RunConfig(
            model=model, data=DataConfig(direction=direction, color_space=color_space)
        )
    except (ConfigError, TypeError) as exc:
        raise UserError(f"{generator}: {exc}") from None
    g = build_generator(model, init=False)
    g.load_state_dict(convert(g_state, g, _generator_keys(g_state, model), generator))
    d_net = None
    if discriminator is not None:
        d_net = build_discriminator(model, init=False)
        d_net.load_state_dict(convert(d_state, d_net, patch_keys(d_state), discriminator))
    check_out(Path(out), [p for p in (generator, discriminator) if p is not None], overwrite)
    source = {
        "generator": str(generator),
        "format": "pytorch-CycleGAN-and-pix2pix",
        "discriminator": str(discriminator) if discriminator else None,
    }
    modules = {"generator": g} if d_net is None else {"generator": g, "discriminator": d_net}
    write_imported(Path(out), config, modules, {"imported_from": source})
    return Path(out), {**fields, "color_space": color_space}


def is_checkpoint(path: Path) -> bool:
    """Whether the folder `path` holds a pix2pix checkpoint: its config.json says so (a
    config.json of any other tool is not ours to replace)."""
    try:
        meta = json.loads((Path(path) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def check_out(out: Path, inputs: list[Path], overwrite: bool) -> None:
    """Refuse an `out` that would lose something: one holding an input file (replacing
    the folder would delete it), or anything but an earlier checkpoint (`overwrite`)."""
    for source in inputs:
        if out.resolve() in Path(source).resolve().parents:
            raise UserError(
                f"{out}: holds the input {source}, which replacing it would delete; "
                f"choose another {setting('--out')} folder"
            )
    check_replaceable(out, "a checkpoint", is_checkpoint, overwrite=overwrite)


def write_imported(
    out: Path, config: RunConfig, modules: dict[str, torch.nn.Module], metadata: dict[str, Any]
) -> None:
    """save_checkpoint, with a failure to write (disk full, read-only) one UserError that
    leaves nothing behind: the staged folder goes, and the parents made for it."""
    missing = first_missing(out)
    try:
        save_checkpoint(
            out.resolve(), config, Progress(), modules, metadata=metadata
        )  # a link stays
    except OSError as exc:
        if missing is not None and missing != out.absolute():
            remove_if_empty(out.parent, missing)
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(
            f"{out}: cannot write the checkpoint ({reason}); nothing was written. Free some "
            f"space or choose a writable {setting('--out')}"
        ) from None


def infer_color_space(fields: dict[str, Any]) -> ColorSpace:
    """lab for a 1 -> 2 channel generator (the official colorization model), else rgb."""
    return "lab" if (fields["in_channels"], fields["out_channels"]) == (1, 2) else "rgb"


def _generator_keys(state: dict[str, torch.Tensor], model: Any) -> dict[str, str]:
    if model.generator.startswith("unet_"):
        return unet_keys(unet_depth(state))
    return resnet_keys(state)
