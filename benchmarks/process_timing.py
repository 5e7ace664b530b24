"""Shared by the whole-process benchmarks (`train_process`, `translate_process`): each
variant a new process, timed from start to exit at two job sizes; per unit (step, image)
the difference of the two jobs' wall times over the difference in units."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any


def worker_env(**extra: str) -> dict[str, str]:
    """The environment for the benchmarks' processes: benchmarks/ importable (for the
    baseline workers), plus `extra`."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of `command`; its stderr in the error if it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def summarise(times: dict[str, dict[int, list[float]]], unit: str) -> dict[str, Any]:
    """Per variant: the best wall time per job size, seconds per `unit` and both as
    ratios against the variant named "baseline"."""
    variants: dict[str, Any] = {}
    for name, jobs in times.items():
        wall = {n: min(t) for n, t in jobs.items()}
        lo, hi = min(wall), max(wall)
        per = (wall[hi] - wall[lo]) / (hi - lo) if hi > lo else wall[lo] / lo
        variants[name] = {"wall_s": {str(n): w for n, w in wall.items()}, f"per_{unit}_s": per}
    base = variants["baseline"]
    for v in variants.values():
        v[f"per_{unit}_speedup"] = base[f"per_{unit}_s"] / v[f"per_{unit}_s"]
        v["wall_speedup"] = {n: base["wall_s"][n] / w for n, w in v["wall_s"].items()}
    return variants


def table(heading: str, variants: dict[str, Any], unit: str, units: str, digits: int) -> str:
    sizes = list(next(iter(variants.values()))["wall_s"])
    lines = [
        heading, "",
        f"| variant | s per {unit} | vs baseline | "
        + " | ".join(f"{n} {units}: wall s (vs baseline)" for n in sizes) + " |",
        "|---|---|---|" + "---|" * len(sizes),
    ]  # fmt: skip
    for name, v in variants.items():
        walls = " | ".join(f"{v['wall_s'][n]:.{digits}f} ({v['wall_speedup'][n]:.2f}x)"
                           for n in sizes)  # fmt: skip
        lines.append(f"| {name} | {v[f'per_{unit}_s']:.3f} | "
                     f"{v[f'per_{unit}_speedup']:.2f}x | {walls} |")  # fmt: skip
    return "\n".join(lines) + "\n"
