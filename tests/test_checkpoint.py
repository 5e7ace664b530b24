"""Checkpoints: identical outputs after reload, atomic replacement, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import pix2pix.checkpoint as ckpt_mod
from conftest import tiny_config
from pix2pix.checkpoint import (
    GENERATOR_FILE,
    Progress,
    find_checkpoint,
    load_training_state,
    load_weights,
    read_meta,
    save_checkpoint,
)
from pix2pix.errors import UserError
from pix2pix.nets import build_discriminator, build_generator
from pix2pix.training.trainer import Trainer


def config(root: Path = Path("data")):
    return tiny_config(root, model={"in_channels": 3, "out_channels": 3})


def save(path: Path, step: int = 1, generator: torch.nn.Module | None = None) -> torch.nn.Module:
    cfg = config()
    g = build_generator(cfg.model) if generator is None else generator
    trainer = Trainer(cfg, torch.device("cpu"))
    modules = {"generator": g, "discriminator": trainer.method.d}
    save_checkpoint(path, cfg, Progress(step, 0, step), modules, trainer.state_dict())
    return g


def test_save_then_load_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = save(tmp_path / "latest")
    g.train()
    g(torch.randn(4, 3, 32, 32))  # move the BN running stats away from their init
    save(tmp_path / "latest", generator=g)
    cfg, progress = read_meta(tmp_path / "latest")
    g2 = load_weights(
        build_generator(cfg.model, init=False), tmp_path / "latest" / "generator.safetensors"
    )
    x = torch.randn(2, 3, 32, 32)
    g.eval()
    g2.eval()
    assert torch.equal(g(x), g2(x))
    assert progress == Progress(1, 0, 1)


RAN: list[str] = []


def _record_call(what: str) -> None:
    RAN.append(what)


class _Payload:
    """Unpickles by calling _record_call: code a loaded checkpoint must never run."""

    def __reduce__(self) -> tuple:
        return (_record_call, ("unpickled",))


def test_training_state_loads_without_pickle(tmp_path: Path) -> None:
    save(tmp_path / "ck")
    state = load_training_state(tmp_path / "ck")  # torch.load(weights_only=True) inside
    assert {"optimizer_g", "optimizer_d", "rng_cpu"} <= set(state)
    # a state that would run code when unpickled is refused, and the code never runs
    # (with weights_only=False the load would call _record_call and succeed)
    torch.save({**state, "extra": _Payload()}, tmp_path / "ck" / "training_state.pt")
    RAN.clear()
    with pytest.raises(UserError, match="training_state.pt: holds objects other than tensors"):
        load_training_state(tmp_path / "ck")
    assert RAN == []


def test_wrapped_modules_are_saved_without_prefixes(tmp_path: Path) -> None:
    g = build_generator(config().model)
    compiled = torch.compile(g)  # lazily compiled: only its state_dict keys matter here
    assert next(iter(compiled.state_dict())).startswith("_orig_mod.")
    save(tmp_path / "ck", generator=compiled)
    from safetensors.torch import load_file

    keys = load_file(tmp_path / "ck" / "generator.safetensors").keys()
    assert keys == g.state_dict().keys()


def test_failure_mid_save_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "latest"
    save(path, step=1)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    real_write = ckpt_mod.atomic_write_bytes
    calls = []

    def dying_write(target: Path, data: bytes) -> None:
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if killed while writing the second file
        real_write(target, data)

    monkeypatch.setattr(ckpt_mod, "atomic_write_bytes", dying_write)
    with pytest.raises(KeyboardInterrupt):
        save(path, step=2)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert read_meta(path)[1].step == 1
    monkeypatch.setattr(ckpt_mod, "atomic_write_bytes", real_write)
    save(path, step=3)  # the leftover temp folder does not get in the way
    assert read_meta(path)[1].step == 3
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]


def test_interrupted_swap_is_found_and_finished(tmp_path: Path) -> None:
    save(tmp_path / "latest", step=4)
    (tmp_path / "latest").rename(tmp_path / ".latest.old")  # killed between the renames
    assert find_checkpoint(tmp_path) == tmp_path / ".latest.old"
    assert read_meta(find_checkpoint(tmp_path))[1].step == 4
    save(tmp_path / "latest", step=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]


def test_missing_file_is_named(tmp_path: Path) -> None:
    save(tmp_path / "ck")
    (tmp_path / "ck" / "generator.safetensors").unlink()
    with pytest.raises(UserError, match="missing generator.safetensors"):
        read_meta(tmp_path / "ck")


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    save(tmp_path / "ck")
    meta_file = tmp_path / "ck" / "config.json"
    meta = json.loads(meta_file.read_text())
    meta["format_version"] = 99
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="format version 99, but this pix2pix reads version 1"):
        read_meta(tmp_path / "ck")


def test_weights_that_do_not_fit_the_config_are_named(tmp_path: Path) -> None:
    save(tmp_path / "ck")
    wider = build_generator(
        config().model.__class__(generator="unet_32", ngf=16, in_channels=3, out_channels=3)
    )
    with pytest.raises(UserError, match="generator.safetensors: weights do not match"):
        load_weights(wider, tmp_path / "ck" / "generator.safetensors")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no config.json here"):
        find_checkpoint(tmp_path)
    with pytest.raises(UserError, match="no such checkpoint"):
        find_checkpoint(tmp_path / "nope")


def test_discriminator_round_trip(tmp_path: Path) -> None:
    cfg = config()
    d = build_discriminator(cfg.model)
    modules = {"generator": build_generator(cfg.model), "discriminator": d}
    save_checkpoint(tmp_path / "ck", cfg, Progress(), modules)
    d2 = load_weights(
        build_discriminator(cfg.model, init=False), tmp_path / "ck" / "discriminator.safetensors"
    )
    assert all(torch.equal(a, b) for a, b in zip(d.state_dict().values(), d2.state_dict().values()))


def test_a_resnet_saved_before_its_dropout_was_built_loads_as_trained(tmp_path: Path) -> None:
    # ResNets were once built without dropout whatever the config said (0.5 by default):
    # such a checkpoint is read as what was trained, dropout 0, and its outputs kept
    cfg = tiny_config("data", model={"generator": "resnet_6blocks", "ngf": 2, "dropout": 0.5,
                                     "in_channels": 3, "out_channels": 3})  # fmt: skip
    trained = build_generator(cfg.model.__class__(**{**cfg.model.__dict__, "dropout": 0.0}))
    save_checkpoint(tmp_path / "old", cfg, Progress(), {"generator": trained})
    loaded, _ = read_meta(tmp_path / "old")
    assert loaded.model.dropout == 0.0
    g = load_weights(build_generator(loaded.model, init=False), tmp_path / "old" / GENERATOR_FILE)
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(g.train()(x), trained.train()(x))  # paper mode: no dropout noise
    save_checkpoint(tmp_path / "new", cfg, Progress(), {"generator": build_generator(cfg.model)})
    assert read_meta(tmp_path / "new")[0].model.dropout == 0.5  # built with it: kept
