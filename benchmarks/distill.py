"""A distilled student against its teacher: `pix2pix translate` speed (whole process) and
the web page's speed in headless Chromium.

    python -m benchmarks.distill translate --teacher RUN --student RUN [--images 8,106]
                                           [--size 128] [--reps 2] [--out DIR]
    python -m benchmarks.distill model --teacher RUN --student RUN [--size 128] [--runs 50]
    python -m benchmarks.distill web --site SITE [--size 256] [--runs 10]

translate: the test inputs of `--data` (facades' label maps by default), resized to
`--size`, translated by the teacher (the baseline) and by the student, each a new
process with its compiled generator cached (primed once with `--compile aot`), and by
the student with `--backend onnxruntime`; per image: the difference between the largest
and smallest job's wall times over the difference in images (start-up excluded), as
images per second and as a ratio against the teacher. Variants alternate.

model: the generators alone in one process (`Pix2Pix.translate_tensor` of a 1 x 3 x size
x size batch, paper mode, each with `auto` settings and its compiled package), alternated,
medians in milliseconds and the student's speed-up.

web: a site written by `pix2pix export --format web`, served by `http.server` and opened
in headless Chromium (/usr/bin/chromium); the page's canvas is set to `--size` and
translated `--runs` times after one warm-up: the median milliseconds of the model alone
(`session.run`) and of the whole translation (canvas in, picture out), and the runtime
backend the page chose.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from benchmarks.process_timing import summarise, timed, worker_env
from pix2pix.runtime import cpu_model

READY = "() => document.body.dataset.ready === 'true'"
GENERATION = "n => Number(document.getElementById('output').dataset.generation || 0) > n"
TIMING = """async ([size, runs]) => {
  const c = document.getElementById('input');
  c.width = size; c.height = size;
  c.getContext('2d').fillStyle = 'rgb(0, 0, 170)';
  c.getContext('2d').fillRect(size / 4, size / 4, size / 2, size / 3);
  await window.pix2pix.run();  // warm-up: the first run allocates
  const model = [], whole = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    model.push(await window.pix2pix.run());
    whole.push(performance.now() - t);
  }
  return { model, whole, backend: window.pix2pix.backend };
}"""


def test_inputs(data: Path, size: int, out: Path) -> list[Path]:
    """The input side of `data`'s test pairs (config direction BtoA: the right half),
    resized to size x size PNGs in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((data / "test").glob("*.jpg")) + sorted((data / "test").glob("*.png")):
        target = out / f"{path.stem}.png"
        if not target.exists():
            image = Image.open(path).convert("RGB")
            w, h = image.size
            half = image.crop((w // 2, 0, w, h)).resize((size, size), Image.NEAREST)
            half.save(target)
        written.append(target)
    return written


def translate(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    inputs = test_inputs(Path(args.data), args.size, out / "all")
    folders = {}
    for n in args.images:
        folders[n] = out / f"in{n}"
        folders[n].mkdir(exist_ok=True)
        for path in inputs[:n]:
            if not (folders[n] / path.name).exists():
                (folders[n] / path.name).symlink_to(path.resolve())
    env = worker_env(PIX2PIX_CACHE=str(out / "cache"))

    def command(ck: str, *extra: str) -> Any:
        return lambda n: [sys.executable, "-m", "pix2pix", "translate", "--checkpoint", ck,
                          str(folders[n]), "--out", str(out / f"out{n}"), "--overwrite",
                          *extra]  # fmt: skip

    variants = {
        "baseline": command(args.teacher),
        "student": command(args.student),
        "student, onnxruntime": command(args.student, "--backend", "onnxruntime"),
    }
    first = min(args.images)
    timed(command(args.teacher, "--compile", "aot")(first), env)
    timed(command(args.student, "--compile", "aot")(first), env)
    timed(variants["student, onnxruntime"](first), env)
    times: dict[str, dict[int, list[float]]] = {v: {n: [] for n in args.images} for v in variants}
    for _ in range(args.reps):
        for n in args.images:
            for name, make in variants.items():
                times[name][n].append(timed(make(n), env))
    return {"cpu": cpu_model(), "threads": torch.get_num_threads(), "size": args.size,
            "variants": summarise(times, "image")}  # fmt: skip


def model(args: argparse.Namespace) -> dict[str, Any]:
    import time

    from pix2pix.translate import Pix2Pix

    nets = {n: Pix2Pix.load(ck, "cpu", compile="aot") for n, ck in
            (("teacher", args.teacher), ("student", args.student))}  # fmt: skip
    x = torch.rand(1, 3, args.size, args.size) * 2 - 1
    times: dict[str, list[float]] = {n: [] for n in nets}
    for net in nets.values():
        net.translate_tensor(x)  # warm-up
    for i in range(args.runs):
        for name, net in nets.items():
            start = time.perf_counter()
            net.translate_tensor(x, seed=i)
            times[name].append(1000 * (time.perf_counter() - start))
    ms = {n: statistics.median(t) for n, t in times.items()}
    return {"cpu": cpu_model(), "threads": torch.get_num_threads(), "size": args.size,
            "ms": ms, "speedup": ms["teacher"] / ms["student"]}  # fmt: skip


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def web(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    handler = functools.partial(Quiet, directory=str(args.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            page.wait_for_function(READY, timeout=120_000)
            got = page.evaluate(TIMING, [args.size, args.runs])
            if args.screenshot:  # a fresh page with --open's image opened in it
                page.set_viewport_size({"width": 1000, "height": 640})
                page.reload()
                page.wait_for_function(READY, timeout=120_000)
                if args.open:
                    page.set_input_files("#upload", args.open)
                    page.wait_for_function(GENERATION, arg=1, timeout=60_000)
                page.screenshot(path=args.screenshot)
            browser.close()
    finally:
        server.shutdown()
    model = json.loads((Path(args.site) / "model.json").read_text())
    return {
        "cpu": cpu_model(),
        "size": args.size,
        "backend": got["backend"],
        "model_mb": (Path(args.site) / "model.onnx").stat().st_size / 2**20,
        "weights": model.get("weights", {}),
        "model_ms_median": statistics.median(got["model"]),
        "whole_ms_median": statistics.median(got["whole"]),
        "model_ms": [round(t, 1) for t in got["model"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("translate")
    t.add_argument("--teacher", required=True)
    t.add_argument("--student", required=True)
    t.add_argument("--data", default="../shared/data/facades")
    t.add_argument("--images", default="8,106")
    t.add_argument("--size", type=int, default=128)
    t.add_argument("--reps", type=int, default=2)
    t.add_argument("--out", default="runs/distill_speed")
    m = sub.add_parser("model")
    m.add_argument("--teacher", required=True)
    m.add_argument("--student", required=True)
    m.add_argument("--size", type=int, default=128)
    m.add_argument("--runs", type=int, default=50)
    w = sub.add_parser("web")
    w.add_argument("--site", required=True)
    w.add_argument("--size", type=int, default=256)
    w.add_argument("--runs", type=int, default=10)
    w.add_argument("--screenshot", help="also save the page as this PNG")
    w.add_argument("--open", help="with --screenshot: the image opened in the page first")
    for p in (t, m, w):
        p.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if args.what == "translate":
        args.images = sorted(int(n) for n in args.images.split(","))
        result = translate(args)
        for name, v in result["variants"].items():
            print(f"{name}: {v['per_image_s'] * 1000:.1f} ms/image "
                  f"({1 / v['per_image_s']:.1f} images/s, {v['per_image_speedup']:.2f}x the "
                  f"teacher); wall {v['wall_s']}")  # fmt: skip
    else:
        result = model(args) if args.what == "model" else web(args)
        print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
