"""Self-describing checkpoints, written so that a kill at any instant loses nothing.

A checkpoint is a folder:

    config.json                 format version, the RunConfig (its method), progress
    <name>.safetensors          one per module the method names, unwrapped weights and
                                buffers: pix2pix's generator.safetensors and (training
                                checkpoints) discriminator.safetensors
    README.md                   the model card (`pix2pix.modelcard`)
    generator_ema.safetensors   the average of G's weights (runs with --ema-decay); the
                                generator inference uses unless asked for the raw one
    training_state.pt           optimisers, grad scaler, RNG states; tensors and plain
                                containers only (read with torch.load weights_only=True)

The learning rate needs no saved scheduler: it is a function of the epoch in `progress`.

`save_checkpoint` writes a complete new folder beside the old one, then swaps the two
with renames: at every instant either the old or the new folder is complete on disk
(while the swap is half done, the old one sits at `.NAME.old` and readers use it).
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, get_args

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file as load_safetensors_file
from safetensors.torch import save as save_safetensors
from torch import nn

from pix2pix._version import __version__
from pix2pix.config import RunConfig, Weights
from pix2pix.errors import UserError, setting
from pix2pix.fileio import atomic_write_bytes, atomic_write_text, staged_folder
from pix2pix.hub import download, is_hub_ref
from pix2pix.modelcard import CARD_FILE, model_card
from pix2pix.nets.resnet import blocks_have_dropout

FORMAT = "pix2pix-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_SUFFIX = ".safetensors"
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
EMA_FILE = "generator_ema.safetensors"
WEIGHTS = get_args(Weights)  # which generator inference loads (`generator_file`)
STATE_FILE = "training_state.pt"
# what resume needs beside the modules the method names (`module_file`)
TRAINING_FILES = (CONFIG_FILE, STATE_FILE)
INFERENCE_FILES = (CONFIG_FILE, GENERATOR_FILE)


def module_file(ckpt: Path, name: str) -> Path:
    """Where checkpoint folder `ckpt` keeps the module called `name`."""
    return Path(ckpt) / f"{name}{WEIGHTS_SUFFIX}"


@dataclass(frozen=True)
class Progress:
    """How far training got: optimiser steps, the epoch, and batches done in that epoch.

    `batch_in_epoch` counts per-process batches of a run with `world_size` processes
    (torchrun); each step consumed world_size x batch_size images.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    world_size: int = 1


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(module, "_orig_mod"):  # torch.compile
            module = module._orig_mod
        elif isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        else:
            return module


def weights_bytes(module: nn.Module) -> bytes:
    """safetensors bytes of the unwrapped module's state (contiguous, on the CPU)."""
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(module).state_dict().items()}
    return save_safetensors(state, metadata={"format": "pt"})


def _old(path: Path) -> Path:
    return path.parent / f".{path.name}.old"


def save_checkpoint(
    path: Path,
    config: RunConfig,
    progress: Progress,
    modules: Mapping[str, nn.Module],
    training_state: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder at `path`, replacing any previous one atomically.

    `modules`: name -> module, each written as `<name>.safetensors` (pix2pix:
    generator, discriminator, generator_ema).

    `metadata`: JSON-able state kept in config.json beside the progress (for example the
    best validation score so far), read back as `open_checkpoint(path).metadata`.
    """
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pix2pix_version": __version__,
        "config": config.to_dict(),
        "progress": asdict(progress),
    }
    if metadata:
        meta["metadata"] = metadata
    with staged_folder(Path(path)) as tmp:
        for name, module in modules.items():
            atomic_write_bytes(module_file(tmp, name), weights_bytes(module))
        if training_state is not None:
            buf = io.BytesIO()
            torch.save(training_state, buf)
            atomic_write_bytes(tmp / STATE_FILE, buf.getvalue())
        card = model_card(config, progress.step, progress.epoch, metadata or {})
        atomic_write_text(tmp / CARD_FILE, card)
        atomic_write_text(tmp / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    return Path(path)


def generator_file(ckpt: Path, weights: str = "auto", name: str = "generator") -> Path:
    """The weights inference loads from checkpoint folder `ckpt` for module `name` (the
    method's inference module): its average `<name>_ema` when there is one (auto) or
    required (ema), else its own (raw)."""
    if weights not in WEIGHTS:
        raise UserError(f"{setting('--weights')} {weights!r}: use one of {', '.join(WEIGHTS)}")
    ema = module_file(ckpt, f"{name}_ema")
    if weights == "ema" and not ema.exists():
        raise UserError(
            f"{ckpt}: has no {ema.name} (the run did not use {setting('--ema-decay')}); "
            f"use {setting('--weights')} raw or auto"
        )
    if weights != "raw" and ema.exists():
        return ema
    return module_file(ckpt, name)


def find_checkpoint(path: Path) -> Path:
    """The checkpoint folder for `path`: itself, or a run folder's `latest/`; a Hub
    model `hf:OWNER/NAME` is downloaded (or taken from the cache) first (`pix2pix.hub`)."""
    if is_hub_ref(path):
        path = download(str(path))
    path = Path(path).expanduser()
    for candidate in (path, path / "latest"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
        if not candidate.exists() and (_old(candidate) / CONFIG_FILE).is_file():
            return _old(candidate)  # a save was interrupted mid-swap; the old one is whole
    if not path.exists():
        raise UserError(f"{path}: no such checkpoint or run folder; check the path")
    raise UserError(
        f"{path}: no {CONFIG_FILE} here or in {path / 'latest'}; "
        "pass a run folder or a checkpoint folder"
    )


def read_described(folder: Path, fmt: str, version: int, what: str) -> dict[str, Any]:
    """The config.json of a self-describing folder (a checkpoint, a segmenter), checked to
    be `fmt` at `version`; a missing, unreadable or foreign one is a UserError."""
    config_file = Path(folder) / CONFIG_FILE
    try:
        meta = json.loads(config_file.read_text())
    except FileNotFoundError:
        raise UserError(f"{config_file}: missing; this is not a complete {what}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{config_file}: unreadable ({exc}); restore it from a backup") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise UserError(f"{config_file}: not a pix2pix {what} config")
    if meta.get("format_version") != version:
        raise UserError(
            f"{config_file}: {what} format version {meta.get('format_version')}, but this "
            f"pix2pix reads version {version}; use the pix2pix release that wrote it"
        )
    return meta


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint folder's config.json says, read once."""

    path: Path
    config: RunConfig
    progress: Progress
    metadata: dict[str, Any]  # saved beside the progress (validation's best, ...)


def open_checkpoint(path: Path, need: tuple[str, ...] = INFERENCE_FILES) -> Checkpoint:
    """The checkpoint folder `path`, checked to be usable (its `need` files present)."""
    path = Path(path)
    config_file = path / CONFIG_FILE
    meta = read_described(path, FORMAT, FORMAT_VERSION, "checkpoint")
    missing = [name for name in need if not (path / name).is_file()]
    if missing:
        raise UserError(f"{path}: checkpoint is missing {', '.join(missing)}; it is incomplete")
    config = RunConfig.from_dict(meta.get("config"), source=str(config_file))
    config = _trained_dropout(path, config)
    progress = meta.get("progress", {})
    try:
        return Checkpoint(path, config, Progress(**progress), meta.get("metadata", {}))
    except TypeError:
        raise UserError(f"{config_file}: 'progress' is damaged ({progress!r})") from None


def _trained_dropout(path: Path, config: RunConfig) -> RunConfig:
    """The config with the dropout its ResNet was trained with: before ResNets were built
    with dropout, their checkpoints recorded the U-Net's 0.5 over weights without it."""
    file = path / GENERATOR_FILE
    if not config.model.generator.startswith("resnet_") or not config.model.dropout:
        return config
    try:
        with safe_open(file, "pt") as f:
            shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}  # noqa: SIM118
    except (OSError, SafetensorError):
        return config  # load_weights names the damaged file
    if blocks_have_dropout(shapes) is not False:
        return config
    return replace(config, model=replace(config.model, dropout=0.0))


def read_meta(path: Path, need: tuple[str, ...] = INFERENCE_FILES) -> tuple[RunConfig, Progress]:
    """Config and progress of the checkpoint folder `path`, checking that it is usable."""
    checkpoint = open_checkpoint(path, need)
    return checkpoint.config, checkpoint.progress


def load_weights(module: nn.Module, file: Path, *, assign: bool = False) -> nn.Module:
    """Load a safetensors file into `module` (strict), with errors naming the file.

    assign: take the file's tensors as the module's (for a module built on the meta
    device: no memory allocated and initialised only to be overwritten)."""
    try:
        state = load_safetensors_file(Path(file))  # read in place: no copy of the bytes
    except (OSError, SafetensorError) as exc:
        raise UserError(f"{file}: unreadable weights ({exc}); the checkpoint is damaged") from None
    try:
        unwrap(module).load_state_dict(state, assign=assign)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"{file}: weights do not match {CONFIG_FILE} ({first})") from None
    return module


def load_tensors(file: Path, unreadable: str, refused: str) -> Any:
    """`torch.load(file, weights_only=True)`: tensors and plain containers only, never
    code. A file holding other objects is refused (`refused`: the message's end, what to
    give instead); any other failure says `unreadable` with the reason."""
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refused an object that is not a tensor or a plain container (one
        # that could run code when loaded): never load it, and say so in one line
        raise UserError(f"{file}: holds objects other than tensors {refused}") from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{file}: {unreadable} ({first})") from None


def load_training_state(path: Path) -> dict[str, Any]:
    """The optimiser/scaler/RNG state of a checkpoint (tensors only, no pickled code)."""
    file = Path(path) / STATE_FILE
    state = load_tensors(
        file,
        "unreadable training state",
        "and plain containers, which could run code when loaded; it was not loaded. "
        "Resume from a checkpoint pix2pix wrote",
    )
    if not isinstance(state, dict):
        raise UserError(f"{file}: not a pix2pix training state (a {type(state).__name__})")
    return state
