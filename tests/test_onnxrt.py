"""`translate --backend onnxruntime`: the generator exported to ONNX once per model, size
and mode, kept in the compile cache, run by ONNX Runtime; the same picture as eager torch
(paper mode too: the same seed, the same dropout noise), int8 weights as an option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import error_line, random_image, run_cli
from pix2pix.data.files.images import read_image, save_image
from pix2pix.errors import ConfigError, UserError
from pix2pix.interop.bicyclegan import import_bicyclegan
from pix2pix.runtime import resolve_speed
from pix2pix.translate import Pix2Pix, aotcache
from pix2pix.translate import onnxrt as onnxrt_module
from test_translate import make_checkpoint

CPU = torch.device("cpu")
BICYCLEGAN = Path(__file__).parent / "fixtures" / "official_bicyclegan"
EAGER = {"precision": "fp32", "channels_last": "off", "compile": "off"}  # NCHW float32


def onnx_files() -> set[Path]:
    folder = aotcache.cache_dir()
    return set(folder.glob("[0-9a-f]*.onnx")) if folder.exists() else set()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # unet_64: one dropout layer (paper mode draws noise) and batch norm
    return make_checkpoint(tmp_path_factory.mktemp("ort") / "ck", generator="unet_64")


def test_paper_and_eval_mode_match_eager_and_a_new_translator_reuses_the_file(
    ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = torch.rand(1, 3, 64, 96) * 2 - 1
    eager = Pix2Pix.load(ckpt, "cpu", **EAGER)
    ort = Pix2Pix.load(ckpt, "cpu", backend="onnxruntime")
    before = onnx_files()
    for eval_mode in (False, True):
        got = ort.translate_tensor(x, eval_mode=eval_mode, seed=3)
        want = eager.translate_tensor(x, eval_mode=eval_mode, seed=3)
        assert (got - want).abs().max() < 1e-4, eval_mode
    # paper mode's noise is the seed's: another seed gives another picture
    other = ort.translate_tensor(x, seed=4)
    assert (other - eager.translate_tensor(x, seed=4)).abs().max() < 1e-4
    assert (other - ort.translate_tensor(x, seed=3)).abs().max() > 0.01
    made = onnx_files() - before
    assert len(made) == 2  # one file per mode
    for f in made:
        assert aotcache.verified(f)["what"]["backend"].startswith("onnxruntime")
    assert not list(aotcache.cache_dir().glob(".*"))  # no temporary left
    # a new translator (a new process does the same) runs the kept file, never exports
    monkeypatch.setattr(onnxrt_module, "export_onnx", lambda *a: pytest.fail("exported"))
    again = Pix2Pix.load(ckpt, "cpu", backend="onnxruntime")
    assert torch.equal(again.translate_tensor(x, seed=3), ort.translate_tensor(x, seed=3))


def test_a_callers_module_runs_itself_with_a_warning(ckpt: Path, caplog) -> None:
    loaded = Pix2Pix.load(ckpt, "cpu", **EAGER)
    before, x = onnx_files(), torch.rand(1, 3, 64, 64) * 2 - 1
    speed = resolve_speed(CPU, "infer", precision="fp32", backend="onnxruntime")
    with caplog.at_level("WARNING"):
        mine = Pix2Pix(loaded.generator, loaded.config, CPU, speed)
    assert "this module is the caller's" in caplog.text and mine._run is loaded.generator
    assert torch.equal(mine.translate_tensor(x, seed=1), loaded.translate_tensor(x, seed=1))
    assert onnx_files() == before  # nothing exported


def test_int8_weights_make_a_smaller_file_close_to_float32(ckpt: Path) -> None:
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    fp32 = Pix2Pix.load(ckpt, "cpu", backend="onnxruntime")
    want = fp32.translate_tensor(x, eval_mode=True)
    before = onnx_files()
    int8 = Pix2Pix.load(ckpt, "cpu", backend="onnxruntime", quantize="int8")
    got = int8.translate_tensor(x, eval_mode=True)
    (made,) = onnx_files() - before
    assert aotcache.verified(made)["what"]["quantize"] == "int8"
    sizes = {aotcache.verified(f)["what"]["quantize"]: f.stat().st_size for f in onnx_files()}
    assert sizes["int8"] < sizes["off"] * 0.9  # the convolutions (not the transposed ones)
    diff = (got - want).abs()
    assert 0 < diff.mean() < 0.05  # quantised (not the float file), and close to it


def test_a_damaged_file_is_removed_and_rebuilt_never_run(ckpt: Path) -> None:
    x = torch.rand(1, 3, 128, 64) * 2 - 1  # a size of its own
    model = Pix2Pix.load(ckpt, "cpu", backend="onnxruntime")
    want = model.translate_tensor(x, eval_mode=True)
    (path,) = {f for f in onnx_files() if aotcache.read_sidecar(f)["what"]["input"][0][2] == 128}
    path.write_bytes(path.read_bytes()[:-100] + bytes(100))  # same size, other content
    again = Pix2Pix.load(ckpt, "cpu", backend="onnxruntime")
    assert torch.equal(again.translate_tensor(x, eval_mode=True), want)
    assert aotcache.verified(path) is not None  # rebuilt whole


def test_the_cli_writes_eager_pictures_and_cache_clear_removes_the_files(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "in"
    images.mkdir()
    for i in range(2):
        save_image(random_image(np.random.default_rng(i), 40, 56), images / f"{i}.png")
    outs = {}
    for name, flags in (
        ("torch", ["--precision", "fp32", "--channels-last", "off", "--compile", "off"]),
        ("ort", ["--backend", "onnxruntime"]),
    ):
        code, out, err = run_cli(
            capsys, "translate", "--checkpoint", ckpt, images, "--out", tmp_path / name, *flags
        )
        assert code == 0, err
        outs[name] = [read_image(tmp_path / name / f"{i}.png").astype(int) for i in range(2)]
    for a, b in zip(outs["torch"], outs["ort"]):
        assert np.abs(a - b).max() <= 1
    code, out, _ = run_cli(capsys, "cache", "list")
    assert code == 0 and "onnxruntime" in out
    code, out, _ = run_cli(capsys, "cache", "clear")
    assert code == 0 and not onnx_files()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--backend", "onnxruntime", "--precision", "bf16"], "runs float32"),
        (["--backend", "onnxruntime", "--compile", "aot"], "compiles by itself"),
        (["--quantize", "int8"], "--quantize int8 is for --backend onnxruntime"),
    ],
)
def test_the_cli_refuses_settings_the_backend_cannot_honour(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list, says: str
) -> None:
    save_image(random_image(np.random.default_rng(0), 32, 32), tmp_path / "a.png")
    code, _, err = run_cli(
        capsys,
        "translate",
        "--checkpoint",
        ckpt,
        tmp_path / "a.png",
        "--out",
        tmp_path / "out",
        *flags,
    )
    assert code == 2 and says in error_line(err) and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_backend_runs_on_the_cpu_and_refuses_generators_with_extra_inputs(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="runs on the CPU"):
        resolve_speed(torch.device("meta"), "infer", backend="onnxruntime")
    with pytest.raises(ConfigError, match="backend 'tensorrt' is not valid"):
        resolve_speed(CPU, "infer", backend="tensorrt")
    assert resolve_speed(CPU, "infer", backend="auto").backend == "torch"
    name = "facades_like_unet256_input_ngf4"  # a model with a latent code
    ck, _ = import_bicyclegan(BICYCLEGAN / f"{name}_net_G.pth", tmp_path / "ck")
    with pytest.raises(UserError, match="also takes z"):
        Pix2Pix.load(ck, "cpu", backend="onnxruntime")
