"""`pix2pix export --format web`: a static site that translates in the browser.

The folder holds index.html and web.js (from `static/web/`), style.css and canvas.js
(the served page's style and drawing tools), model.onnx (the generator, exported and
verified as `pix2pix.export` does), model.json (what the page needs: channels, canvas
size, the drawing tools of `serve`, a latent code's size) and ort/, ONNX Runtime Web's
WASM runtime (and its WebGPU build when the runtime folder has one) copied from the npm
package. Nothing is loaded from
elsewhere: any static file server (`python -m http.server`) serves it, offline.

The runtime comes from `runtime` (an `onnxruntime-web` package folder, its dist/, or a
folder with node_modules/onnxruntime-web), or, when not given, from `npm pack` of the
pinned version `ORT_WEB_VERSION` at export time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import asdict
from importlib.resources import files
from pathlib import Path
from typing import Any

from pix2pix.errors import UserError, setting
from pix2pix.export import export_generator, load_generator
from pix2pix.export.runtimes import WEIGHT_FORMATS, compress_weights, onnx_runner
from pix2pix.fileio import check_replaceable, staged_folder
from pix2pix.methods import method_of
from pix2pix.serve.drawing import drawing_for

ORT_WEB_VERSION = "1.23.0"  # the onnxruntime-web release the page is tested with
WASM_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
WEBGPU_FILES = (
    "ort.webgpu.min.js",
    "ort-wasm-simd-threaded.jsep.wasm",
    "ort-wasm-simd-threaded.jsep.mjs",
)
# the style sheet and the drawing tools are those of serve's page
PAGE_FILES = ("web/index.html", "web/web.js", "style.css", "canvas.js")


def runtime_dist(runtime: Path) -> Path:
    """The folder holding ort.wasm.min.js: `runtime` itself, its dist/, or
    node_modules/onnxruntime-web/dist under it."""
    for folder in (runtime, runtime / "dist", runtime / "node_modules/onnxruntime-web/dist"):
        if (folder / WASM_FILES[0]).is_file():
            missing = [f for f in WASM_FILES if not (folder / f).is_file()]
            if missing:
                raise UserError(f"{folder}: lacks {', '.join(missing)}; give a whole "
                                "onnxruntime-web package")  # fmt: skip
            return folder
    raise UserError(
        f"{setting('--runtime')} {runtime}: no {WASM_FILES[0]} there, in dist/ or in "
        "node_modules/onnxruntime-web/dist/; give the onnxruntime-web package folder "
        f"(npm pack onnxruntime-web@{ORT_WEB_VERSION}, then unpack it)"
    )


def fetch_runtime(into: Path) -> Path:
    """`npm pack onnxruntime-web@ORT_WEB_VERSION` into `into`, unpacked: its dist folder."""
    npm = shutil.which("npm")
    if npm is None:
        raise UserError(
            f"the web export needs ONNX Runtime Web: install npm, or give {setting('--runtime')} "
            f"DIR (the onnxruntime-web {ORT_WEB_VERSION} package, unpacked)"
        )
    done = subprocess.run(
        [npm, "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--silent"],
        cwd=into, capture_output=True, text=True,
    )  # fmt: skip
    packs = sorted(into.glob("onnxruntime-web-*.tgz"))
    if done.returncode != 0 or not packs:
        raise UserError(
            f"npm pack onnxruntime-web@{ORT_WEB_VERSION} failed ({done.stderr.strip()[-200:]}); "
            f"give {setting('--runtime')} DIR with the package unpacked"
        )
    with tarfile.open(packs[0]) as tar:
        tar.extractall(into, filter="data")
    return runtime_dist(into / "package")


def page_info(generator: Any, config: Any, eval_mode: bool, runtimes: list[str]) -> dict:
    """model.json: what the page needs to feed the model and draw for it."""
    m = config.model
    stride = int(generator.stride)
    extras = method_of(config).extra_inputs(config)
    nz = next((s.channels for s in extras if s.name == "z"), 0)
    drawing = asdict(drawing_for(config, int(m.in_channels), stride))
    side = max(stride, drawing["width"] // stride * stride)  # the ONNX graph's constraint
    drawing["width"] = drawing["height"] = side
    return {
        "generator": m.generator,
        "method": m.method,
        "direction": config.data.direction,
        "in_channels": int(m.in_channels),
        "out_channels": int(m.out_channels),
        "stride": stride,
        "nz": nz,
        "batch_norm": "running statistics" if eval_mode else "batch statistics",
        "drawing": drawing,
        "runtimes": runtimes,
        "ort_web_version": ORT_WEB_VERSION,
    }


def compress_model(model: Path, fmt: str, info: dict) -> dict:
    """Store `model`'s weights as `fmt` (`export.runtimes.compress_weights`) and measure
    what that changes: the output's largest and mean difference from the float32 file's,
    in 8-bit levels, on a seeded random input of the page's size."""
    import torch

    if fmt not in WEIGHT_FORMATS:
        raise UserError(f"{setting('--web-weights')} {fmt!r}: choose fp32, fp16 or int8")
    side = info["drawing"]["width"]
    g = torch.Generator().manual_seed(0)
    x = [torch.rand(1, info["in_channels"], side, side, generator=g) * 2 - 1]
    x += [torch.randn(1, info["nz"], generator=g)] if info["nz"] else []
    before = onnx_runner(model)(*x)
    compress_weights(model, fmt)
    diff = (onnx_runner(model)(*x) - before).abs() * 127.5
    return {"format": fmt, "levels_max": round(float(diff.max()), 3),
            "levels_mean": round(float(diff.mean()), 4)}  # fmt: skip


def is_site(path: Path) -> bool:
    return (path / "model.json").is_file() and (path / "model.onnx").is_file()


def export_web(
    checkpoint: str | Path,
    out: str | Path,
    *,
    runtime: str | Path | None = None,
    eval_mode: bool = False,
    overwrite: bool = False,
    weights: str = "auto",
    web_weights: str = "fp16",
) -> Path:
    """Write the static site for `checkpoint` as the folder `out` (see the module doc).
    `web_weights`: fp16 or int8 store model.onnx's kernels smaller (`compress_model`).

    `out` must be new, empty, or (with `overwrite`) an earlier web export; it appears
    complete or not at all."""
    out = Path(out)
    check_replaceable(out, "a web export", is_site, overwrite=overwrite)
    generator, config = load_generator(checkpoint, weights)
    if config.data.color_space == "lab":
        raise UserError(f"{checkpoint}: a Lab colour model; the web page handles RGB and gray")
    with tempfile.TemporaryDirectory() as tmp:
        dist = runtime_dist(Path(runtime)) if runtime else fetch_runtime(Path(tmp))
        with staged_folder(out) as site:
            export_generator(generator, config, "onnx", site / "model.onnx", eval_mode=eval_mode)
            (site / "ort").mkdir()
            runtimes = ["wasm"]
            if all((dist / f).is_file() for f in WEBGPU_FILES):
                runtimes.append("webgpu")
            for name in WASM_FILES + (WEBGPU_FILES if "webgpu" in runtimes else ()):
                shutil.copyfile(dist / name, site / "ort" / name)
            for name in PAGE_FILES:
                data = files("pix2pix.serve").joinpath(f"static/{name}").read_bytes()
                (site / Path(name).name).write_bytes(data)
            info = page_info(generator, config, eval_mode, runtimes)
            info["weights"] = compress_model(site / "model.onnx", web_weights, info)
            (site / "model.json").write_text(json.dumps(info, indent=2) + "\n")
    return out
