"""`pix2pix export --format web`: the static site runs in headless Chromium from a plain
static file server, fetches nothing from elsewhere, and translates as Python does.

The runtime is tests/fixtures/ort_web (three files of the onnxruntime-web npm package),
so no network is needed. Skipped only where /usr/bin/chromium is missing.
"""

from __future__ import annotations

import functools
import http.server
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import error_line, run_cli
from pix2pix.export.runtimes import compress_weights, onnx_runner
from pix2pix.serve.web import export_web
from pix2pix.translate import Pix2Pix
from test_serve import make_model
from test_serve_browser import CHROMIUM, FLAGS

RUNTIME = Path(__file__).parent / "fixtures" / "ort_web" / "onnxruntime-web-1.23.0-wasm.tar.xz"
READY = "() => document.body.dataset.ready === 'true'"
GENERATION = "n => Number(document.getElementById('output').dataset.generation || 0) > n"
PIXELS = """id => { const c = document.getElementById(id);
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ort")
    with tarfile.open(RUNTIME) as tar:
        tar.extractall(folder, filter="data")
    return folder


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    site = tmp_path / "site"
    handler = functools.partial(SilentHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join()


class SilentHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def as_image(flat: list[int], size: int) -> np.ndarray:
    return np.asarray(flat, dtype=np.uint8).reshape(size, size, 4)[:, :, :3]


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_site_draws_and_translates_in_chromium_as_python_does(
    tmp_path: Path, runtime: Path, static_server: tuple[Path, str], weights: str
) -> None:
    from playwright.sync_api import sync_playwright

    site, url = static_server
    make_model(tmp_path / "ck", palette="facades")  # unet_64, palette drawing tools
    export_web(tmp_path / "ck", site, runtime=runtime, eval_mode=True, web_weights=weights)
    info = json.loads((site / "model.json").read_text())
    assert info["drawing"]["mode"] == "palette" and info["runtimes"] == ["wasm"]
    assert sorted(p.name for p in (site / "ort").iterdir()) == sorted(
        p.name for p in runtime.iterdir()
    )
    size = info["drawing"]["width"]
    foreign, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 670})
            page.on("request", lambda r: r.url.startswith((url, "data:")) or foreign.append(r.url))
            # ONNX Runtime's own warnings ("[W:onnxruntime...]") arrive as console errors
            page.on("console", lambda m: m.type == "error" and "[W:onnxruntime" not in m.text
                    and errors.append(m.text))  # fmt: skip
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_function(READY, timeout=60_000)
            page.click("#swatches .swatch[data-index='3']")
            box = page.locator("#input").bounding_box()
            before = int(page.eval_on_selector("#output", "c => Number(c.dataset.generation)"))
            page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.3 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.6 * box["height"], steps=5)
            page.mouse.up()
            page.wait_for_function(GENERATION, arg=before)
            drawn = as_image(page.evaluate(PIXELS, "input"), size)
            shown = as_image(page.evaluate(PIXELS, "output"), size)
            status = page.inner_text("#status")
        finally:
            browser.close()
    assert not foreign, f"the page fetched from elsewhere: {foreign}"
    assert not errors, f"the page logged errors: {errors}"
    assert len(np.unique(drawn.reshape(-1, 3), axis=0)) == 2  # background and the stroke
    assert "ms (wasm)" in status
    if weights == "fp32":
        model = Pix2Pix.load(tmp_path / "ck", device="cpu", precision="fp32", compile="off")
        want = np.asarray(model.translate_array(drawn, eval_mode=True))
    else:  # the int8 file as ONNX Runtime runs it in Python (its kernels restored in WASM)
        x = torch.from_numpy(drawn).permute(2, 0, 1)[None].float() / 127.5 - 1
        y = onnx_runner(site / "model.onnx")(x)[0].permute(1, 2, 0).clamp(-1, 1)
        want = ((y + 1) * 127.5).round().byte().numpy()
    diff = np.abs(shown.astype(int) - want.astype(int))
    assert diff.max() <= 1, f"browser and Python differ by up to {diff.max()} levels"
    assert diff.std() > 0 or want.std() > 0  # a real image, not a blank canvas


def test_web_export_command_and_its_refusals(
    tmp_path: Path, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_model(tmp_path / "ck")
    site = tmp_path / "site"
    code, out, _ = run_cli(capsys, "export", "--checkpoint", tmp_path / "ck", "--format", "web",
                           "--out", site, "--runtime", runtime)  # fmt: skip
    assert code == 0 and "model.onnx" in out and (site / "index.html").is_file()
    info = json.loads((site / "model.json").read_text())
    assert info["weights"]["format"] == "fp16" and "fp16 weights" in out  # the default
    assert info["drawing"]["mode"] == "pen" and info["nz"] == 0
    # a second export over the first needs --overwrite; a folder of other files is refused
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "ck", "--format", "web",
                           "--out", site, "--runtime", runtime)  # fmt: skip
    assert code == 2 and "--overwrite" in error_line(err)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "ck", "--format", "web",
                           "--out", other, "--runtime", runtime)  # fmt: skip
    assert code == 2 and "does not hold a web export" in error_line(err)
    assert (other / "notes.txt").read_text() == "mine"
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "ck", "--format", "web",
                           "--out", tmp_path / "s2", "--runtime", tmp_path)  # fmt: skip
    assert code == 2 and "--runtime" in error_line(err) and not (tmp_path / "s2").exists()
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "ck", "--format", "onnx",
                           "--out", tmp_path / "g.onnx", "--runtime", runtime)  # fmt: skip
    assert code == 2 and "--runtime is for --format web" in error_line(err)
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "ck", "--format", "onnx",
                           "--out", tmp_path / "g.onnx", "--web-weights", "fp16")  # fmt: skip
    assert code == 2 and "--web-weights is for --format web" in error_line(err)


def test_web_weights_shrink_the_kernels_and_record_what_that_changes(
    tmp_path: Path, runtime: Path
) -> None:
    make_model(tmp_path / "ck")
    sizes, records = {}, {}
    for fmt in ("fp32", "fp16", "int8"):
        site = export_web(tmp_path / "ck", tmp_path / fmt, runtime=runtime, web_weights=fmt)
        sizes[fmt] = (site / "model.onnx").stat().st_size
        records[fmt] = json.loads((site / "model.json").read_text())["weights"]
    assert records["fp32"]["levels_max"] == 0
    assert sizes["fp16"] < 0.6 * sizes["fp32"] and sizes["int8"] < 0.35 * sizes["fp32"]
    assert 0 < records["fp16"]["levels_max"] < records["int8"]["levels_max"] < 20


def test_int8_kernels_are_per_channel_symmetric_and_fp16_ones_rounded(tmp_path: Path) -> None:
    import onnx
    from onnx import helper, numpy_helper

    w = np.array([[[[0.25, -1.0]]], [[[0.02, 0.006]]]], dtype=np.float32)  # (2, 1, 1, 2)
    b = np.array([0.3, -0.3], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["output"])], "g",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 1, 1, 2])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, 2, 1, 1])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )  # fmt: skip
    x = torch.tensor([[[[1.0, 2.0]]]])
    SCALES = np.array([1, 0.02])[:, None, None, None] / 127
    for fmt, want_w in (
        # scale per output channel: max|w| / 127 (1/127, then 0.02/127)
        ("int8", np.array([[[[32, -127]]], [[[127, 38]]]]) * SCALES),
        ("fp16", w.astype(np.float16).astype(np.float64)),
    ):  # fmt: skip
        path = tmp_path / f"{fmt}.onnx"
        onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        compress_weights(path, fmt)
        stored = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
        assert stored["b"].dtype == np.float32  # a bias stays as it was
        assert stored[f"w.{fmt}"].dtype == (np.int8 if fmt == "int8" else np.float16)
        got = onnx_runner(path)(x).flatten().numpy()
        expected = (want_w[:, 0, 0] * x[0, 0, 0].numpy()).sum(axis=1) + b
        assert np.allclose(got, expected, atol=1e-6), (fmt, got, expected)
