"""Devices, numeric precision, and the speed settings chosen for each device.

`resolve_speed` turns the user's `auto`/explicit choices into a concrete `Speed`. The
`auto` defaults are the fastest settings measured per device and purpose (training or
inference) with `python -m benchmarks.throughput`; docs/PERFORMANCE.md has the numbers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from pix2pix.errors import ConfigError, setting

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
Purpose = Literal["train", "infer"]
# --compile values beyond auto/on/off: torch.compile modes. reduce-overhead captures CUDA
# graphs (worth it for small GPU batches, where kernel launches dominate).
COMPILE_MODES = ("reduce-overhead", "max-autotune")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else mps, else cpu; other names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"{setting('--device')} {name!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"{setting('--device')} {name}: CUDA is not available here; use {setting('--device')} "
            "cpu"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"{setting('--device')} {name}: only {torch.cuda.device_count()} GPU(s) here"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"{setting('--device')} {name}: MPS is not available here; use {setting('--device')} "
            "cpu"
        )
    return device


@functools.cache
def native_bf16(device_type: str) -> bool:
    """Whether the hardware computes bf16 natively (AVX512-BF16/AMX CPUs, Ampere+ GPUs)."""
    if device_type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return False


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), for reports and cache keys."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class Speed:
    """Concrete speed settings: autocast precision, memory layout, torch.compile, and
    for inference the ahead-of-time compiled packages (`aot`: off; cached: use one kept
    on disk; build: also compile a missing one, see `pix2pix.translate.aot`)."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None  # None: torch.compile's default mode
    aot: str = "off"
    backend: str = "torch"  # or onnxruntime (CPU inference, float32: translate.onnxrt)
    quantize: str = "off"  # onnxruntime: int8 (dynamic quantisation)

    def __str__(self) -> str:
        """For logs: "bf16, channels-last, compiled (max-autotune)"."""
        parts = [self.precision]
        if self.backend != "torch":
            q = ", int8 weights" if self.quantize != "off" else ""
            return ", ".join([*parts, f"{self.backend}{q}"])
        parts += ["channels-last"] if self.channels_last else []
        if self.compile:
            parts.append(f"compiled ({self.compile_mode})" if self.compile_mode else "compiled")
        parts += [f"ahead-of-time compiled: {self.aot}"] if self.aot != "off" else []
        return ", ".join(parts)


# Inference compiles only for jobs of at least this many images: compilation costs about
# 20 s on a 2-core CPU, repaid after ~this many 256x256 images (docs/PERFORMANCE.md).
# Smaller jobs use a package compiled earlier, when there is one.
COMPILE_MIN_IMAGES = 200


def default_speed(device: torch.device, purpose: Purpose, images: int | None = None) -> Speed:
    """The measured-fastest settings for `device` (see docs/PERFORMANCE.md).

    CPU training: bf16 autocast where the CPU has native bf16, NCHW, no compile (measured
    slower for training). CPU inference: bf16 weights in channels_last where the CPU has
    native bf16; the generator compiled ahead of time with frozen weights, from the disk
    cache, or compiled (once per model, size and machine) when the job (`images`) is
    large enough to repay it.
    CUDA (not measured here: no GPU was available to this project): bf16 (fp16 before
    Ampere), channels_last, no compile unless asked.
    """
    bf16 = native_bf16(device.type)
    if device.type == "cpu":
        if purpose == "train":
            return Speed("bf16" if bf16 else "fp32")
        big_job = images is not None and images >= COMPILE_MIN_IMAGES
        aot = "build" if big_job else "cached"
        return Speed("bf16" if bf16 else "fp32", channels_last=bf16, aot=aot)
    if device.type == "cuda":
        return Speed("bf16" if bf16 else "fp16", channels_last=True, compile=False)
    return Speed()


def resolve_speed(
    device: torch.device,
    purpose: Purpose,
    precision: str = "auto",
    channels_last: str = "auto",
    compile: str = "auto",
    images: int | None = None,
    backend: str = "auto",
    quantize: str = "off",
) -> Speed:
    """Concrete settings from 'auto'/explicit choices ('on'/'off' for the switches;
    `compile` also takes a torch.compile mode from COMPILE_MODES, which turns it on, and
    for CPU inference 'aot': compile ahead of time now if no package is cached).

    `images`: how many images an inference job will translate (decides 'auto' compile).
    `backend`: auto or torch, or onnxruntime for CPU inference (float32; `quantize`
    int8 quantises its weights); auto is torch (onnxruntime measured slower, see
    docs/PERFORMANCE.md).
    """
    if backend not in ("auto", "torch", "onnxruntime"):
        raise ConfigError(
            f"{setting('--backend')} {backend!r} is not valid; choose auto, torch or onnxruntime"
        )
    if backend == "onnxruntime" or quantize != "off":
        return _onnxruntime_speed(device, purpose, precision, compile, backend, quantize)
    if compile == "aot" and (purpose != "infer" or device.type != "cpu"):
        raise ConfigError(
            f"{setting('--compile')} aot is for translating on the CPU; use on or off here"
        )
    base = default_speed(device, purpose, images)
    explicit = compile not in ("auto", "aot")
    speed = Speed(
        precision=base.precision if precision == "auto" else precision,
        channels_last=base.channels_last if channels_last == "auto" else channels_last == "on",
        compile=base.compile if compile == "auto" else compile not in ("off", "aot"),
        compile_mode=compile if compile in COMPILE_MODES else None,
        aot="build" if compile == "aot" else "off" if explicit else base.aot,
    )
    if speed.precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"{setting('--precision')} fp16 needs a CUDA device (got {device}); use bf16 or fp32"
        )
    return speed


def _onnxruntime_speed(
    device: torch.device, purpose: Purpose, precision: str, compile: str, backend: str, q: str
) -> Speed:
    """The checked settings of `--backend onnxruntime [--quantize int8]`."""
    problem = None
    if backend != "onnxruntime":
        problem = f"{setting('--quantize')} {q} is for {setting('--backend')} onnxruntime"
    elif q not in ("off", "int8"):
        problem = f"{setting('--quantize')} {q!r} is not valid; choose off or int8"
    elif purpose != "infer" or device.type != "cpu":
        problem = f"{setting('--backend')} onnxruntime runs on the CPU; use --device cpu"
    elif precision not in ("auto", "fp32"):
        problem = f"{setting('--backend')} onnxruntime runs float32; drop --precision {precision}"
    elif compile not in ("auto", "off"):
        problem = f"{setting('--backend')} onnxruntime compiles by itself; drop --compile {compile}"
    if problem:
        raise ConfigError(problem)
    return Speed("fp32", backend="onnxruntime", quantize=q)


def configure_backends() -> None:
    """Process-wide backend settings for speed; call once, at the entry point.

    cuDNN benchmark mode times the convolution algorithms for each new input shape and
    keeps the fastest: pix2pix trains on one crop size, so the search is paid once.
    """
    torch.backends.cudnn.benchmark = True


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed-precision context for forward passes; a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def memory_format(speed: Speed) -> torch.memory_format:
    return torch.channels_last if speed.channels_last else torch.contiguous_format


def compiled(module: nn.Module, speed: Speed, purpose: Purpose) -> Callable[..., torch.Tensor]:
    """`module`, or a torch.compile'd callable sharing its parameters.

    For inference the weights are frozen into the compiled graph (constant-folded and
    prepacked: the measured CPU speed-up). Freezing is an inductor setting read while
    compiling, so it is patched in around each call rather than set for the process.
    """
    if not speed.compile:
        return module
    fn = torch.compile(module, mode=speed.compile_mode)
    if purpose == "train":
        return fn

    from torch._inductor import config as inductor  # here: importing it costs ~1 s

    def frozen(*args: torch.Tensor) -> torch.Tensor:
        # fallback_random: dropout (paper mode) draws through ATen from the global
        # generator, as eager does, so a seed gives eager's noise (inductor's own RNG not)
        with inductor.patch(freezing=True, fallback_random=True):
            return fn(*args)

    return frozen


@dataclass
class Kit:
    """What the training loop lends a method's step (`pix2pix.methods`): the device and
    precision, the grad scaler, the step count and the augmentation stream (all saved and
    resumed by the loop)."""

    device: torch.device
    speed: Speed
    scaler: torch.amp.GradScaler
    augment_rng: torch.Generator
    steps: int = 0  # optimiser steps taken before this one

    def autocast(self) -> contextlib.AbstractContextManager:
        """The run's mixed precision for forward passes."""
        return autocast(self.speed.precision, self.device)


def available_memory(device: torch.device) -> int:
    """Bytes free for a forward pass: CUDA's free memory, or the OS's available RAM."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 2 << 30
