"""Generators compiled ahead of time: built once into the cache, reused by later
translators, equal to eager inference (paper mode too: the same seed, the same picture),
never stale, never in the way when they fail, and a cache folder that stays bounded."""

from __future__ import annotations

import copy
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import random_image, run_cli, tiny_config
from pix2pix.data.files.images import save_image
from pix2pix.errors import ConfigError
from pix2pix.nets import build_generator
from pix2pix.runtime import Speed, default_speed, resolve_speed
from pix2pix.translate import Pix2Pix, aotcache, translate_files
from pix2pix.translate import aot as aot_module
from pix2pix.translate.aot import AotGenerator, cache_dir
from test_speed import TOL, trained_generator

CPU = torch.device("cpu")
PAPER = {"generator": "unet_64", "ngf": 4}  # one dropout layer (decoder level 4)


def config(**model):
    return tiny_config("data", model={"in_channels": 3, "out_channels": 3, "ngf": 8, **model})


def translator(g: torch.nn.Module, aot: str, **model) -> Pix2Pix:
    return Pix2Pix(copy.deepcopy(g), config(**model), CPU, Speed(aot=aot), owned=True)


def eager(g: torch.nn.Module, **model) -> Pix2Pix:
    return Pix2Pix(g, config(**model), CPU, Speed())


def packages(folder: Path | None = None) -> set[Path]:
    folder = folder or cache_dir()
    return set(folder.glob("[0-9a-f]*.pt2")) if folder.exists() else set()


def ran_a_package(model: Pix2Pix) -> bool:
    return any(r is not model.generator for r in model._run._runners.values())


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    old = os.environ["PIX2PIX_CACHE"]
    os.environ["PIX2PIX_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    os.environ["PIX2PIX_CACHE"] = old


@pytest.fixture(scope="module")
def built(cache):
    """One package built (unet_32 at 2x3x32x32, eval mode) in a cache of this module."""
    g = trained_generator()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model = translator(g, "build")
    y = model.translate_tensor(x, eval_mode=True)
    return g, x, y, packages()


@pytest.fixture(scope="module")
def paper(cache):
    """One paper-mode package (unet_64, dropout 0.5, batch norm) at 1x3x64x64, seed 3.
    Its running statistics are random: a package using them would not match eager."""
    torch.manual_seed(0)
    g = build_generator(config(**PAPER).model).eval()
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    before = packages()
    y = translator(g, "build", **PAPER).translate_tensor(x, seed=3)
    return g, x, y, packages() - before


def test_a_built_package_matches_eager_and_later_translators_reuse_it(
    built, monkeypatch: pytest.MonkeyPatch
) -> None:
    g, x, y, made = built
    (package,) = made
    assert aotcache.read_sidecar(package)["masks"] == []  # eval mode: no noise inputs
    assert not list(cache_dir().glob(".*"))  # no temporary left
    assert (y - eager(g).translate_tensor(x, eval_mode=True)).abs().max() < TOL["fp32"]
    # a new translator of the same weights (a new process would do the same) loads it
    # instead of building: building is made impossible here
    monkeypatch.setattr(aot_module, "build_package", lambda *a: pytest.fail("rebuilt"))
    again = translator(g, "cached")
    assert torch.equal(again.translate_tensor(x, eval_mode=True), y)
    assert ran_a_package(again) and packages() >= made


def test_a_paper_mode_package_gives_the_eager_picture_for_the_same_seed(
    paper, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 25 item 4: the package drew its own dropout masks (25/255 off on unet_64)
    g, x, y, made = paper
    ref = eager(g, **PAPER)
    assert (y - ref.translate_tensor(x, seed=3)).abs().max() < TOL["fp32"]
    assert len(made) == 1 and len(aotcache.read_sidecar(next(iter(made)))["masks"]) == 1
    assert (ref.translate_tensor(x, seed=4) - y).abs().max() > 1e-2  # the seed matters
    monkeypatch.setattr(aot_module, "build_package", lambda *a: pytest.fail("rebuilt"))
    model = translator(g, "cached", **PAPER)
    stats = {k: v.clone() for k, v in model.generator.state_dict().items()}
    for seed in (3, 4):
        out = model.translate_tensor(x, seed=seed)
        assert (out - ref.translate_tensor(x, seed=seed)).abs().max() < TOL["fp32"]
    assert ran_a_package(model)
    # the global generator is left where eager leaves it (what comes next draws alike)
    draws = []
    for m in (model, ref):
        torch.manual_seed(11)
        m.translate_tensor(x, seed=None)
        draws.append(torch.rand(4))
    assert torch.equal(*draws)
    # tiled (two 64x64 tiles through the same package) and served (translate_array)
    wide = torch.rand(1, 3, 64, 128) * 2 - 1
    tiled = model.translate_tensor(wide, seed=5, tile=64)
    assert (tiled - ref.translate_tensor(wide, seed=5, tile=64)).abs().max() < TOL["fp32"]
    img = random_image(np.random.default_rng(0), 64, 64)
    served = model.translate_array(img, seed=6).astype(int)
    assert np.abs(served - ref.translate_array(img, seed=6).astype(int)).max() <= 1
    assert all(torch.equal(v, stats[k]) for k, v in model.generator.state_dict().items())


def test_an_eval_mode_package_of_a_generator_with_dropout_is_built_and_run(cache) -> None:
    # the noise wrapper asked an eval-mode export for masks it never takes: every such
    # build failed (StopIteration) and translated uncompiled
    torch.manual_seed(0)
    g = build_generator(config(**PAPER).model).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    before = packages()
    model = translator(g, "build", **PAPER)
    y = model.translate_tensor(x, eval_mode=True)
    assert len(packages() - before) == 1 and ran_a_package(model)
    assert (y - eager(g, **PAPER).translate_tensor(x, eval_mode=True)).abs().max() < TOL["fp32"]


def test_a_strided_input_reaches_the_package_dense(built) -> None:
    # item 5: a view (a crop, ab[:, :3]) was indexed with the compiled strides
    g, x, y, _ = built
    ab = torch.cat([x, -x], dim=1)  # (2, 6, 32, 32): its first half is a strided view
    model = translator(g, "cached")
    assert not ab[:, :3].is_contiguous()
    assert torch.equal(model.translate_tensor(ab[:, :3], eval_mode=True), y)
    assert ran_a_package(model)
    nhwc = ab.contiguous(memory_format=torch.channels_last)[:, 3:]
    dense, layout = aot_module.dense(nhwc)
    assert layout == "nhwc" and dense.is_contiguous(memory_format=torch.channels_last)


def test_other_weights_sizes_or_modes_never_take_a_package_made_for_others(built) -> None:
    g, x, _, made = built
    other = copy.deepcopy(g)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)  # a fine-tuned model, say
    model = translator(other, "cached")
    ran = model.translate_tensor(x, eval_mode=True)
    assert torch.equal(ran, eager(other).translate_tensor(x, eval_mode=True))  # ran eagerly
    same = translator(g, "cached")
    same.translate_tensor(x[:1], eval_mode=True)  # another batch size
    same.translate_tensor(x, eval_mode=False)  # the paper's mode
    assert not ran_a_package(same) and not ran_a_package(model)
    key = ((2, 3, 32, 32), "torch.float32", "nchw", "eval")
    paths = [AotGenerator(m.generator, {}, build=False).package_path(key) for m in (model, same)]
    assert paths[0] != paths[1] and packages() >= made


def test_the_key_holds_the_isa_features_read_at_run_time(
    built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # item 13: hosts differing in AMX or VNNI shared a package (an illegal instruction)
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: Some CPU\nflags\t\t: fpu sse2 avx2 fma constant_tsc "
                    "avx512f avx512_vnni amx_tile\nbugs\t\t: spectre_v1\n")  # fmt: skip
    assert aotcache.isa_features(info) == ["amx_tile", "avx2", "avx512_vnni", "avx512f",
                                           "fma", "sse2"]  # fmt: skip
    if Path("/proc/cpuinfo").exists() and os.uname().machine == "x86_64":
        assert "sse2" in aotcache.isa_features()
    g = built[0]
    key = ((2, 3, 32, 32), "torch.float32", "nchw", "eval")
    gen = AotGenerator(g, {}, build=False)
    paths = []
    for flags in (["avx512f", "amx_tile"], ["avx512f"]):
        monkeypatch.setattr(aotcache, "isa_features", lambda flags=flags: flags)
        paths.append(gen.package_path(key))
    assert paths[0] != paths[1]


def fake_compiler(monkeypatch: pytest.MonkeyPatch, good: bytes, calls: list) -> None:
    """aoti_compile_and_package writing `good` (a real package's bytes): no compiler run."""

    def compile_(program, package_path):
        calls.append(package_path)
        Path(package_path).write_bytes(good)

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", compile_)


def damage(package: Path, how: str) -> None:
    data = bytearray(package.read_bytes())
    if how == "truncated":
        package.write_bytes(data[: len(data) // 2])
    elif how == "flipped":  # same size, one byte of the compiled code changed
        data[len(data) // 2] ^= 0xFF
        package.write_bytes(data)
    else:
        aotcache.sidecar_of(package).unlink()


def install(package: Path, folder: Path) -> Path:
    """A copy of `package` and its sidecar in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in (package, aotcache.sidecar_of(package)):
        shutil.copy(p, folder / p.name)
    return folder / package.name


@pytest.mark.parametrize("how", ["truncated", "flipped", "no sidecar"])
def test_a_damaged_package_is_removed_and_rebuilt_never_run(
    built, how, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog
) -> None:
    # item 13: a truncated package (a power cut before fsync) was never rebuilt
    g, x, y, (package,) = built
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path))
    mine = install(package, cache_dir())
    damage(mine, how)
    with caplog.at_level(logging.WARNING, logger="pix2pix.translate.aot"):
        out = translator(g, "cached").translate_tensor(x, eval_mode=True)
    assert torch.equal(out, eager(g).translate_tensor(x, eval_mode=True))  # not the package
    assert f"{mine} is damaged" in caplog.text and not mine.exists()
    damage(install(package, cache_dir()), how)
    calls: list = []
    fake_compiler(monkeypatch, package.read_bytes(), calls)
    model = translator(g, "build")
    assert torch.equal(model.translate_tensor(x, eval_mode=True), y)  # rebuilt, then run
    assert len(calls) == 1 and ran_a_package(model) and mine.read_bytes() == package.read_bytes()


def test_a_package_is_fsynced_before_its_rename_and_the_folder_after(
    built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    g, x, _, made = built
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path))
    fake_compiler(monkeypatch, next(iter(made)).read_bytes(), [])
    events: list[tuple] = []
    real = os.replace
    monkeypatch.setattr(aotcache, "fsync_file", lambda p: events.append(("fsync", Path(p))))
    monkeypatch.setattr(aotcache, "fsync_dir", lambda p: events.append(("dir", Path(p))))

    def rename(a, b):
        events.append(("rename", Path(a), Path(b)))
        real(a, b)

    monkeypatch.setattr(aotcache.os, "replace", rename)
    translator(g, "build").translate_tensor(x, eval_mode=True)
    (package,) = packages()
    renames = [e for e in events if e[0] == "rename"]
    assert [e[2] for e in renames] == [aotcache.sidecar_of(package), package]
    order = [events.index(("fsync", r[1])) < events.index(r) for r in renames]
    assert all(order) and events[-1] == ("dir", package.parent)


def test_cache_list_and_clear_touch_only_our_packages(
    built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    _, _, _, made = built
    (package,) = made
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path))
    folder = cache_dir()
    install(package, folder)
    foreign = {"notes.txt": "mine", f"{'f' * 32}.pt2": "not a package", "f.json": "{}",
               f"{'f' * 32}.json": '{"format": "someone else"}'}  # fmt: skip
    for name, text in foreign.items():
        (folder / name).write_text(text)
    stale = folder / f".{'d' * 32}.{aotcache.host_id()}-999999999.k.tmp.pt2"
    stale.write_bytes(b"half")
    code, out, _ = run_cli(capsys, "cache", "list")
    assert code == 0 and package.name in out and "unet_32 2x3x32x32 eval" in out
    assert "1 package(s)" in out
    code, out, _ = run_cli(capsys, "cache", "clear")
    assert code == 0 and "removed 2 file(s)" in out
    assert sorted(p.name for p in folder.iterdir()) == sorted(foreign)


def test_only_sizes_enough_images_of_the_job_share_are_compiled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # item 13: a 200+ image job compiled every distinct size it met (~20 s each)
    from pix2pix.translate.files import _batch_shapes

    assert _batch_shapes([(32, 32)] * 5 + [(40, 32)], 2) == {
        (2, 32, 32): 4, (1, 32, 32): 1, (1, 32, 40): 1}  # fmt: skip
    monkeypatch.setattr(aot_module, "COMPILE_MIN_IMAGES", 3)  # what AotGenerator.plan reads
    built_for: list[tuple] = []

    def no_build(generator, x, path, info):
        built_for.append(tuple(x.shape))
        raise RuntimeError("not compiled in this test")

    monkeypatch.setattr(aot_module, "build_package", no_build)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(32, 32)] * 3 + [(40, 40)]):
        save_image(random_image(rng, h, w), tmp_path / "in" / f"{i}.png")
    model = translator(trained_generator(), "cached")
    translate_files(model, [str(tmp_path / "in")], tmp_path / "out", progress=False)
    assert built_for == [(1, 3, 32, 32)]  # not the 40x40 (padded to 64x64) of one image


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
    assert torch.equal(out, eager(g).translate_tensor(x, eval_mode=True))
    assert "could not compile the generator (RuntimeError: no C++ compiler found)" in caplog.text
    assert not list((tmp_path / "aot").iterdir())  # the half-written file was removed


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


def test_packages_load_through_the_loader_or_the_public_api_alike(
    built, paper, monkeypatch
) -> None:
    # the direct loader skips inductor's import and ISA probes; a torch without it
    # takes `aoti_load_package`: both run the package to the same output
    for _, x, y, made in (built, paper):
        (package,) = made
        torch.manual_seed(3)  # the paper package's noise, as translate_tensor(seed=3)
        masks = aot_module.draw_masks(aotcache.read_sidecar(package)["masks"])
        direct = aot_module.load_package(package)(x.clone(), *masks)
        assert torch.equal(direct, y)
    assert aot_module.package_loader() is not None  # torch 2.13 has it
    monkeypatch.setattr(aot_module, "package_loader", lambda: None)
    _, x, y, (package,) = built
    assert torch.equal(aot_module.load_package(package)(x.clone()), y)


def test_importing_the_package_and_cli_leaves_inductor_and_dynamo_unimported() -> None:
    # they cost ~1 s of every process's start-up; only compiling needs them
    code = ("import sys, pix2pix, pix2pix.cli, pix2pix.translate.aot; "
            "print(sorted(m for m in sys.modules if m.startswith(('torch._dynamo', "
            "'torch._inductor'))))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
