"""The GPU check: one prepared run of everything that needs CUDA, in under 8 minutes.

    bash benchmarks/gpu_check.sh [--json PATH]       # on a machine with one CUDA GPU
    bash benchmarks/gpu_check.sh --dry-run            # anywhere: tiny sizes, on the CPU

Installs nothing beyond the project. Measures, on the device:

1. training it/s at 256x256, batch 1 and batch 16: plain fp32 eager (the official
   code's way, `benchmarks/baseline.py`), our `auto` fast path (bf16 autocast,
   channels_last on CUDA), and the fast path compiled; peak memory of each;
2. translation img/s (batch 16, `auto`, paper mode and eval mode);
3. mixed precision tracking fp32: 200 steps each of fp32, bf16 and fp16 (with the grad
   scaler) from the same weights on the same batches: the mean |L1 loss - fp32's| and
   the final losses;
4. the CUDA-only checks: SyncBatchNorm in a one-process NCCL group equals BatchNorm;
   the fp16 GradScaler skips a step with inf gradients and trains otherwise; NCCL
   all_reduce with one process.

`--dry-run` runs the same code at 32x32 with `unet_32`, a few steps, on the CPU (gloo
instead of NCCL, no fp16, no compilation), so the script is known to work before a GPU
is at hand; the test suite runs it. A JSON of every figure goes to `--json` (default
gpu_check.json).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from benchmarks.baseline import PlainPix2Pix
from benchmarks.throughput import peak_memory_mb, sync
from pix2pix.config import ModelConfig, RunConfig, TrainConfig
from pix2pix.runtime import Speed, configure_backends, cpu_model, resolve_speed
from pix2pix.training.trainer import Trainer
from pix2pix.translate import Pix2Pix


def _batch(n: int, size: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    return a.to(device), (a.flip(1) * 0.5).to(device)  # a learnable mapping


def _per_second(fn: Any, steps: int, device: torch.device, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(3):
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        sync(device)
        times.append((time.perf_counter() - start) / steps)
    return 1.0 / statistics.median(times)


def _config(args: argparse.Namespace, precision: str, compile_: str, batch: int) -> RunConfig:
    model = ModelConfig(generator=args.generator, in_channels=3, out_channels=3)
    train = TrainConfig(batch_size=batch, precision=precision, compile=compile_, device=args.device)
    return RunConfig(model=model, train=train)


def _measure(step: Any, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    return {"it_s": _per_second(step, args.steps, device, args.warmup),
            "peak_mb": peak_memory_mb(step, device)}  # fmt: skip


def training_speed(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch in args.batches:
        a, b = _batch(batch, args.size, device)
        plain = PlainPix2Pix(_config(args, "fp32", "off", batch).model, device)
        row = {
            "plain_fp32_eager": _measure(functools.partial(plain.train_step, a, b), args, device)
        }
        del plain
        variants = [("auto", "off")] + ([("auto_compiled", "on")] if args.compile else [])
        for name, compile_ in variants:
            speed = resolve_speed(device, "train", "auto", "auto", compile_)
            trainer = Trainer(_config(args, "auto", compile_, batch), device, speed)
            step = functools.partial(trainer.step, trainer.to_device(a), trainer.to_device(b))
            row[name] = {"speed": str(speed), **_measure(step, args, device)}
            row[name]["speedup"] = row[name]["it_s"] / row["plain_fp32_eager"]["it_s"]
            del trainer, step
        out[f"batch_{batch}"] = row
    return out


def translation_speed(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    cfg = _config(args, "auto", "off", 1)
    from pix2pix.nets import build_generator

    g = build_generator(cfg.model).eval()
    model = Pix2Pix(g, cfg, device, resolve_speed(device, "infer"))
    a, _ = _batch(args.infer_batch, args.size, device)
    n = args.infer_batch
    paper = _per_second(lambda: model.translate_tensor(a), args.steps, device, args.warmup)
    evald = _per_second(lambda: model.translate_tensor(a, eval_mode=True), args.steps, device,
                        args.warmup)  # fmt: skip
    return {"speed": str(model.speed), "batch": n, "img_s_paper": paper * n,
            "img_s_eval": evald * n}  # fmt: skip


def precision_tracking(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    precisions = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    curves: dict[str, list[float]] = {}
    batches = [_batch(1, args.size, device, seed=i) for i in range(8)]
    for precision in precisions:
        torch.manual_seed(0)
        cfg = _config(args, precision, "off", 1)
        trainer = Trainer(cfg, device, Speed(precision))
        losses = []
        for i in range(args.track_steps):
            a, b = batches[i % len(batches)]
            step_losses, _ = trainer.step(trainer.to_device(a), trainer.to_device(b))
            losses.append(float(step_losses["loss_g_l1"]))
        curves[precision] = losses
    ref = curves["fp32"]
    return {
        p: {"final_l1": c[-1], "mean_abs_diff_vs_fp32": statistics.fmean(
            abs(x - r) for x, r in zip(c, ref)), "first_l1": c[0]}
        for p, c in curves.items()
    }  # fmt: skip


def cuda_checks(device: torch.device) -> dict[str, Any]:
    """SyncBatchNorm == BatchNorm in a one-process group, GradScaler, all_reduce."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29531")
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        t = torch.ones(4, device=device)
        dist.all_reduce(t)
        results: dict[str, Any] = {"backend": backend, "all_reduce_ok": bool((t == 1).all())}
        if device.type == "cuda":
            torch.manual_seed(0)
            bn = torch.nn.BatchNorm2d(8).to(device)
            sync_bn = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
                torch.nn.Sequential(torch.nn.BatchNorm2d(8))
            ).to(device)
            x = torch.randn(4, 8, 16, 16, device=device)
            results["sync_bn_max_diff"] = (bn(x) - sync_bn(x)).abs().max().item()
            results.update(_grad_scaler(device))
        return results
    finally:
        dist.destroy_process_group()


def _grad_scaler(device: torch.device) -> dict[str, Any]:
    net = torch.nn.Linear(4, 1).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda")
    before = net.weight.detach().clone()
    with torch.autocast("cuda", torch.float16):
        loss = net(torch.full((2, 4), float("inf"), device=device)).sum()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    skipped = torch.equal(before, net.weight.detach())
    opt.zero_grad()
    with torch.autocast("cuda", torch.float16):
        loss = F.mse_loss(net(torch.ones(2, 4, device=device)), torch.zeros(2, 1, device=device))
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return {"grad_scaler_skips_inf": skipped,
            "grad_scaler_trains": not torch.equal(before, net.weight.detach())}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.dry_run:
        args.device, args.size, args.generator = "cpu", 32, "unet_32"
        args.batches, args.steps, args.track_steps, args.infer_batch = [1, 2], 1, 3, 2
        args.warmup = 1
        args.compile = False  # compiling costs minutes on a CPU; the GPU run does it
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device here; run with --dry-run to check the script")
    start = time.perf_counter()
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "torch": torch.__version__, "dry_run": args.dry_run, "size": args.size,
        "generator": args.generator,
    }  # fmt: skip
    for name, part in (("training", training_speed), ("translation", translation_speed),
                       ("precision", precision_tracking)):  # fmt: skip
        t0 = time.perf_counter()
        result[name] = part(args, device)
        result[f"{name}_seconds"] = time.perf_counter() - t0
        print(f"{name}: {json.dumps(result[name], default=str)}", flush=True)
    result["checks"] = cuda_checks(device)
    print(f"checks: {json.dumps(result['checks'])}", flush=True)
    result["seconds"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--generator", default="unet_256")
    parser.add_argument("--batches", type=lambda s: [int(v) for v in s.split(",")],
                        default=[1, 16])  # fmt: skip
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measure")
    parser.add_argument("--track-steps", type=int, default=200)
    parser.add_argument("--infer-batch", type=int, default=16)
    parser.add_argument("--json", default="gpu_check.json")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    args = parser.parse_args()
    configure_backends()
    result = run(args)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.json} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
