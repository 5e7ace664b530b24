"""Generators compiled ahead of time: built once into the cache, reused by later
translators, equal to eager inference, never stale, never in the way when they fail."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from pix2pix.errors import ConfigError
from pix2pix.runtime import Speed, default_speed, resolve_speed
from pix2pix.translate import Pix2Pix
from pix2pix.translate import aot as aot_module
from pix2pix.translate.aot import AotGenerator, cache_dir
from test_speed import TOL, trained_generator

CPU = torch.device("cpu")


def config():
    return tiny_config("data", model={"in_channels": 3, "out_channels": 3, "ngf": 8})


def translator(g: torch.nn.Module, aot: str) -> Pix2Pix:
    return Pix2Pix(copy.deepcopy(g), config(), CPU, Speed(aot=aot), owned=True)


def packages() -> set[Path]:
    found = cache_dir().glob("*.pt2") if cache_dir().exists() else ()
    return {p for p in found if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """One package built (unet_32 at 2x3x32x32, eval mode) in a cache of this module."""
    old = os.environ["PIX2PIX_CACHE"]
    os.environ["PIX2PIX_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    g = trained_generator()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model = translator(g, "build")
    y = model.translate_tensor(x, eval_mode=True)
    yield g, x, y, packages()
    os.environ["PIX2PIX_CACHE"] = old


def test_a_built_package_matches_eager_and_later_translators_reuse_it(
    built, monkeypatch: pytest.MonkeyPatch
) -> None:
    g, x, y, made = built
    assert len(made) == 1 and not list(cache_dir().glob(".*"))  # no temporary left
    eager = Pix2Pix(g, config(), CPU, Speed()).translate_tensor(x, eval_mode=True)
    assert (y - eager).abs().max() < TOL["fp32"]
    # a new translator of the same weights (a new process would do the same) loads it
    # instead of building: building is made impossible here
    monkeypatch.setattr(aot_module, "build_package", lambda *a: pytest.fail("rebuilt"))
    again = translator(g, "cached")
    assert torch.equal(again.translate_tensor(x, eval_mode=True), y)
    runner = next(iter(again._run._runners.values()))
    assert runner is not again.generator  # the package ran, not the eager module
    assert packages() == made


def test_other_weights_sizes_or_modes_never_take_a_package_made_for_others(built) -> None:
    g, x, _, made = built
    other = copy.deepcopy(g)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)  # a fine-tuned model, say
    model = translator(other, "cached")
    eager = Pix2Pix(other, config(), CPU, Speed()).translate_tensor(x, eval_mode=True)
    assert torch.equal(model.translate_tensor(x, eval_mode=True), eager)  # ran eagerly
    same = translator(g, "cached")
    same.translate_tensor(x[:1], eval_mode=True)  # another batch size
    same.translate_tensor(x, eval_mode=False)  # the paper's mode
    assert all(r is same.generator for r in same._run._runners.values())
    keys = [AotGenerator(m.generator, {}, build=False).package_path(((2, 3, 32, 32),))
            for m in (model, same)]  # fmt: skip
    assert keys[0] != keys[1] and packages() == made  # nothing was written


def test_a_failed_build_warns_and_translates_without_compiling(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path))

    def no_compiler(program, package_path):
        Path(package_path).write_bytes(b"half")  # as an interrupted compiler leaves it
        raise RuntimeError("no C++ compiler found\nmore detail")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", no_compiler)
    g = trained_generator()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with caplog.at_level(logging.WARNING, logger="pix2pix.translate.aot"):
        out = translator(g, "build").translate_tensor(x, eval_mode=True)
    eager = Pix2Pix(g, config(), CPU, Speed()).translate_tensor(x, eval_mode=True)
    assert torch.equal(out, eager)
    assert "could not compile the generator (RuntimeError: no C++ compiler found)" in caplog.text
    assert not list((tmp_path / "aot").iterdir())  # the half-written file was removed


def test_a_damaged_package_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path))
    g = trained_generator()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    model = translator(g, "cached")
    path = model._run.package_path(((1, 3, 32, 32), "torch.float32", "nchw", "eval"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a package")
    with caplog.at_level(logging.WARNING, logger="pix2pix.translate.aot"):
        out = model.translate_tensor(x, eval_mode=True)
    assert torch.equal(out, Pix2Pix(g, config(), CPU, Speed()).translate_tensor(x, eval_mode=True))
    assert f"could not load {path}" in caplog.text and path.read_bytes() == b"not a package"


def test_a_callers_module_is_never_compiled_ahead_of_time() -> None:
    g = trained_generator()  # fp32 on the CPU: used as it is, not copied
    model = Pix2Pix(g, config(), CPU, Speed(aot="build"))
    assert model.generator is g and model._run is g


def test_auto_uses_the_cache_and_builds_only_for_large_jobs() -> None:
    assert default_speed(CPU, "infer").aot == "cached"
    assert default_speed(CPU, "infer", images=10_000).aot == "build"
    assert not default_speed(CPU, "infer", images=10_000).compile  # AOT replaces it
    assert resolve_speed(CPU, "infer", compile="aot").aot == "build"
    assert resolve_speed(CPU, "infer", compile="off").aot == "off"
    on = resolve_speed(CPU, "infer", compile="on")
    assert on.compile and on.aot == "off"
    assert default_speed(CPU, "train").aot == "off"
    with pytest.raises(ConfigError, match="compile aot is for translating on the CPU"):
        resolve_speed(CPU, "train", compile="aot")


def test_packages_load_through_the_loader_or_the_public_api_alike(built, monkeypatch) -> None:
    # the direct loader skips inductor's import and ISA probes; a torch without it
    # takes `aoti_load_package`: both run the package to the same output
    _, x, y, made = built
    (package,) = made
    direct = aot_module.load_package(package)(x.clone())
    assert aot_module.package_loader() is not None  # torch 2.13 has it
    monkeypatch.setattr(aot_module, "package_loader", lambda: None)
    public = aot_module.load_package(package)(x.clone())
    assert torch.equal(direct, y) and torch.equal(public, y)


def test_importing_the_package_and_cli_leaves_inductor_and_dynamo_unimported() -> None:
    # they cost ~1 s of every process's start-up; only compiling needs them
    import subprocess
    import sys

    code = ("import sys, pix2pix, pix2pix.cli, pix2pix.translate.aot; "
            "print(sorted(m for m in sys.modules if m.startswith(('torch._dynamo', "
            "'torch._inductor'))))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
