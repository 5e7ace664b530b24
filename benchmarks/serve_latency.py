"""Round-trip time of POST /translate on a real server, as the demo page sees it.

    python -m benchmarks.serve_latency [--generator unet_256] [--size 256] [--requests 20]

Builds a randomly initialised generator at the default width (ngf 64; speed does not
depend on the weights), serves it with uvicorn on a free loopback port, and times
`--requests` POSTs of one `--size` x `--size` PNG after warm-up ones: the whole round
trip (upload, decode, model, PNG encode, download) and the model's share (the
X-Inference-Ms header). Prints JSON with the median, min and max of each.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.config import ModelConfig, RunConfig
from pix2pix.nets import build_generator
from pix2pix.serve.app import create_app
from pix2pix.serve.server import BackgroundServer
from pix2pix.translate import Pix2Pix


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def measure(generator: str, ngf: int, size: int, requests: int, warmup: int, mode: str) -> dict:
    config = RunConfig(
        model=ModelConfig(generator=generator, ngf=ngf, in_channels=3, out_channels=3)
    )
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(
            Path(tmp) / "ck", config, Progress(), {"generator": build_generator(config.model)}
        )
        model = Pix2Pix.load(Path(tmp) / "ck", device="cpu")
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    files = {"image": ("input.png", buf.getvalue(), "image/png")}
    total, in_model = [], []
    with BackgroundServer(create_app(model)) as url, httpx.Client(base_url=url) as client:
        for i in range(warmup + requests):
            start = time.perf_counter()
            res = client.post("/translate", params={"mode": mode}, files=files, timeout=120)
            elapsed = (time.perf_counter() - start) * 1000
            res.raise_for_status()
            if i >= warmup:
                total.append(elapsed)
                in_model.append(float(res.headers["x-inference-ms"]))
    return {
        "generator": generator,
        "ngf": ngf,
        "size": size,
        "mode": mode,
        "speed": str(model.speed),
        "requests": requests,
        "round_trip_ms": summary(total),
        "model_ms": summary(in_model),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="unet_256")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--mode", default="paper", choices=["paper", "eval"])
    args = parser.parse_args()
    result = measure(args.generator, args.ngf, args.size, args.requests, args.warmup, args.mode)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
