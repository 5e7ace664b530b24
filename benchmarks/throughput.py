"""Training and translation throughput: our default fast path against the plain baseline.

    python -m benchmarks.throughput [--quick] [--device cpu|cuda] [--size 256]
                                    [--batch-size 1] [--json PATH] [--data DIR]

Everything is measured in one process, the variants interleaved (A B A B ...) so that
drifting clocks or a busy neighbour hit both alike; medians are reported. Also: FLOPs per
training iteration (torch.utils.flop_counter), the GFLOP/s achieved against a matmul peak
measured in the same run, peak memory, and the data pipeline's images/s from disk
through augmentation. A markdown table goes to stdout, `--json` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.baseline import PlainPix2Pix
from pix2pix.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from pix2pix.data.files.images import save_image
from pix2pix.data.pairs.datasets import PairedDataset
from pix2pix.data.pairs.sampler import EpochBatchSampler
from pix2pix.data.tools.synthetic import make_pair
from pix2pix.runtime import Speed, configure_backends, resolve_device, resolve_speed
from pix2pix.training.loop import _workers
from pix2pix.training.trainer import Trainer
from pix2pix.translate import Pix2Pix


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    variants: dict[str, Callable[[], object]], reps: int, iters: int, device: torch.device
) -> dict[str, float]:
    """Median seconds per call of each variant, timing `iters` calls per turn, A B A B."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, fn in variants.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(iters):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - start) / iters)
    return {name: statistics.median(t) for name, t in times.items()}


def matmul_peak(dtype: torch.dtype, device: torch.device, max_n: int = 2048) -> float:
    """GFLOP/s of a large square matmul: the attainable compute rate for `dtype`.

    The size grows from 256 until one product takes 50 ms (or reaches `max_n`), so a
    dtype the hardware only emulates (bf16 on a CPU without AVX512-BF16 runs at ~1
    GFLOP/s) is measured in a second instead of minutes.
    """
    n = 256
    while True:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(3):
            sync(device)
            start = time.perf_counter()
            a @ b
            sync(device)
            best = min(best, time.perf_counter() - start)
        if best > 0.05 or n >= max_n:
            return 2 * n**3 / best / 1e9
        n *= 2


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak memory while `fn` runs: CUDA allocator peak, or the process's peak RSS on Linux."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        fn()
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def write_facades_like(root: Path, count: int, size: int) -> Path:
    """`count` aligned JPEGs of 2size x size (the public datasets' layout)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        a, b = make_pair(size, 0, i)
        save_image(np.concatenate([a, b], axis=1), root / f"{i + 1}.jpg")
    return root


def data_pipeline_ips(root: Path, cache: str, batch_size: int, epochs: int = 2) -> float:
    """Images/s through decoding, resize 286 + crop 256 + flip, collation (default workers)."""
    cfg = DataConfig(root=str(root), cache=cache)
    dataset = PairedDataset(cfg, 3, 3)
    sampler = EpochBatchSampler(len(dataset), batch_size)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=_workers(cfg.workers))
    start = time.perf_counter()
    count = 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            count += batch["input"].shape[0]
    return count / (time.perf_counter() - start)


def _timings(
    args: argparse.Namespace,
    plain: PlainPix2Pix,
    fast: Trainer,
    translator: Pix2Pix,
    single: Pix2Pix,
    a: torch.Tensor,
    b: torch.Tensor,
    device: torch.device,
) -> tuple[float, dict[str, float], dict[str, float]]:
    """(warm-up seconds, training and inference medians) of the plain and fast paths."""
    fast_a, fast_b = fast.to_device(a), fast.to_device(b)
    start = time.perf_counter()  # warm-up, including any compilation
    for _ in range(2):
        plain.train_step(a, b)
        fast.step(fast_a, fast_b)
        plain.infer(a)
        translator.translate_tensor(a)
        translator.translate_tensor(a, eval_mode=True)
        single.translate_tensor(a)
    warmup_s = time.perf_counter() - start

    reps, iters = (3, 1) if args.quick else (7, 2)
    train = interleaved(
        {"baseline": lambda: plain.train_step(a, b), "fast": lambda: fast.step(fast_a, fast_b)},
        reps, iters, device,
    )  # fmt: skip
    infer = interleaved(
        {
            "baseline": lambda: plain.infer(a),
            "fast": lambda: translator.translate_tensor(a),
            "single": lambda: single.translate_tensor(a),
            "baseline_eval": lambda: plain.infer(a, eval_mode=True),
            "fast_eval": lambda: translator.translate_tensor(a, eval_mode=True),
        },
        reps, iters * 4, device,
    )  # fmt: skip

    return warmup_s, train, infer


def run(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    size, batch = args.size, args.batch_size
    model = ModelConfig(generator=f"unet_{size}", in_channels=3, out_channels=3)
    torch.manual_seed(0)
    a = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    b = torch.rand(batch, 3, size, size, device=device) * 2 - 1

    plain = PlainPix2Pix(model, device)
    config = RunConfig(model=model, train=TrainConfig(batch_size=batch, device=str(device)))
    fast = Trainer(config, device)
    # inference as `translate` runs it for a folder (bulk: compiled where that pays off)
    # and for a single call from Python
    bulk_speed = resolve_speed(device, "infer", compile=args.compile, images=10**6)
    single_speed = resolve_speed(device, "infer")
    translator = Pix2Pix(fast.g, config, device, bulk_speed)  # copies fast.g if it must
    single = Pix2Pix(fast.g, config, device, single_speed)

    warmup_s, train, infer = _timings(args, plain, fast, translator, single, a, b, device)
    with FlopCounterMode(display=False) as counter:
        plain.train_step(a, b)
    gflop = counter.get_total_flops() / 1e9
    fast_dtype = torch.bfloat16 if fast.speed.precision == "bf16" else torch.float32
    peak = {
        "fp32": matmul_peak(torch.float32, device),
        "bf16": matmul_peak(torch.bfloat16, device),
    }
    peak_fast = peak["bf16"] if fast_dtype == torch.bfloat16 else peak["fp32"]

    fast_a, fast_b = fast.to_device(a), fast.to_device(b)
    memory = {
        "baseline": peak_memory_mb(lambda: plain.train_step(a, b), device),
        "fast": peak_memory_mb(lambda: fast.step(fast_a, fast_b), device),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else write_facades_like(Path(tmp), 64, 256)
        data = {
            cache: data_pipeline_ips(root, cache, batch, epochs=1 if args.quick else 2)
            for cache in ("off", "on")
        }

    return _result(args, device, fast, bulk_speed, single_speed, train, infer, gflop, peak,
                   peak_fast, memory, data, warmup_s)  # fmt: skip


def _result(
    args: argparse.Namespace,
    device: torch.device,
    fast: Trainer,
    bulk_speed: Speed,
    single_speed: Speed,
    train: dict[str, float],
    infer: dict[str, float],
    gflop: float,
    peak: dict[str, float],
    peak_fast: float,
    memory: dict[str, float],
    data: dict[str, float],
    warmup_s: float,
) -> dict:
    """The figures, as the JSON file and the table hold them."""
    size, batch = args.size, args.batch_size
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "size": size,
        "batch_size": batch,
        "train_fast_settings": str(fast.speed),
        "infer_fast_settings": str(bulk_speed),
        "infer_single_settings": str(single_speed),
        "train_baseline_ips": batch / train["baseline"],
        "train_fast_ips": batch / train["fast"],
        "train_speedup": train["baseline"] / train["fast"],
        "infer_baseline_ips": batch / infer["baseline"],
        "infer_fast_ips": batch / infer["fast"],
        "infer_speedup": infer["baseline"] / infer["fast"],
        "infer_single_ips": batch / infer["single"],
        "infer_single_speedup": infer["baseline"] / infer["single"],
        "infer_eval_baseline_ips": batch / infer["baseline_eval"],
        "infer_eval_fast_ips": batch / infer["fast_eval"],
        "infer_eval_speedup": infer["baseline_eval"] / infer["fast_eval"],
        "gflop_per_iter": gflop,
        "achieved_gflops": gflop / train["fast"],
        "baseline_gflops": gflop / train["baseline"],
        "peak_gflops": peak_fast,
        "peak_gflops_fp32": peak["fp32"],
        "peak_gflops_bf16": peak["bf16"],
        "fraction_of_peak": gflop / train["fast"] / peak_fast,
        "train_peak_mem_mb_baseline": memory["baseline"],
        "train_peak_mem_mb_fast": memory["fast"],
        "data_ips_from_disk": data["off"],
        "data_ips_cached": data["on"],
        "data_workers": _workers(-1),
        "warmup_s": warmup_s,
    }
    return result


def table(r: dict) -> str:
    def row(name: str, base: float, fast: float, unit: str) -> str:
        return f"| {name} | {base:.3g} {unit} | {fast:.3g} {unit} | {fast / base:.2f}x |"

    mem_b, mem_f = r["train_peak_mem_mb_baseline"], r["train_peak_mem_mb_fast"]
    lines = [
        f"{r['device']} ({r['device_name']}, {r['threads']} threads), torch {r['torch']}, "
        f"{r['size']}x{r['size']}, batch {r['batch_size']}",
        f"fast path: training {r['train_fast_settings']}; translation of a folder "
        f"{r['infer_fast_settings']}; one call {r['infer_single_settings']}",
        "",
        "| measure | plain fp32 eager | fast path | ratio |",
        "|---|---|---|---|",
        row("training", r["train_baseline_ips"], r["train_fast_ips"], "img/s"),
        row("translation (paper mode)", r["infer_baseline_ips"], r["infer_fast_ips"], "img/s"),
        row(
            "translation, one call (paper)", r["infer_baseline_ips"], r["infer_single_ips"], "img/s"
        ),
        row(
            "translation (--eval)", r["infer_eval_baseline_ips"], r["infer_eval_fast_ips"], "img/s"
        ),
        row("training compute", r["baseline_gflops"], r["achieved_gflops"], "GFLOP/s"),
    ]
    if mem_b and mem_f:
        lines.append(row("training peak memory", mem_b, mem_f, "MB"))
    lines += [
        "",
        f"- {r['gflop_per_iter']:.1f} GFLOP per training iteration; the fast path reaches "
        f"{100 * r['fraction_of_peak']:.0f}% of the matmul peak measured in this run "
        f"({r['peak_gflops']:.0f} GFLOP/s; fp32 {r['peak_gflops_fp32']:.0f}, "
        f"bf16 {r['peak_gflops_bf16']:.0f})",
        f"- data pipeline ({r['data_workers']} workers): {r['data_ips_from_disk']:.0f} img/s "
        f"decoding from disk, {r['data_ips_cached']:.0f} img/s from the in-memory cache "
        f"({r['data_ips_from_disk'] / r['train_fast_ips']:.0f}x the training rate)",
        f"- warm-up (incl. compilation): {r['warmup_s']:.1f} s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--data", help="aligned dataset for the data-pipeline figure")
    parser.add_argument(
        "--compile", default="auto", choices=["auto", "on", "off"], help="for translation"
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    configure_backends()
    result = run(args)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
