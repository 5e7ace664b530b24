"""Training, resume and translation give the outputs recorded before a refactor.

`tests/fixtures/golden.json` was written (PIX2PIX_RECORD_GOLDEN=1) by the code as it
stood before the method layer (issue 26): for the paper recipe, the improved recipe and
a run with the other step options, fp32 on fixed seeds, it holds the losses of every step,
each checkpoint file's weights (sums, and the bytes' SHA-256) and the translations of a
fixed input in eval and paper mode. On a CPU with the recorder's features the files must
be byte for byte the same; on another CPU (whose kernels round differently) the numbers
must agree to 1e-4.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config, write_aligned
from pix2pix import fit
from pix2pix.translate import Pix2Pix

GOLDEN = Path(__file__).parent / "fixtures" / "golden.json"
RECORD = os.environ.get("PIX2PIX_RECORD_GOLDEN") == "1"
CASES: dict[str, dict] = {
    "paper": {},
    "improved": {"train": {"recipe": "improved"}},
    "options": {
        "model": {
            "d_scales": 2,
            "discriminator": "patch_16",
            "spectral_norm": True,
            "norm": "instance",
        },
        "train": {
            "gan_loss": "hinge",
            "feature_matching": 10.0,
            "r1_gamma": 1.0,
            "r1_every": 2,
            "lr_d": 4e-4,
            "reconstruction": "l2",
        },
    },
}
FILES = ("generator", "discriminator", "generator_ema")


def cpu_key() -> str:
    """What decides the kernels' rounding: the torch build, the CPU and its features."""
    flags = ""
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = " ".join(sorted(f for f in line.split() if f.startswith(("avx", "amx"))))
                break
    return f"{torch.__version__} {platform.machine()} {flags}"


def summary(run: Path) -> dict:
    """Losses per step, weights per checkpoint file, translations of a fixed input."""
    ckpt = run / "latest"
    out: dict = {"losses": []}
    for line in (run / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "step" in rec and "loss_g" in rec:
            out["losses"].append([rec[k] for k in sorted(rec) if k.startswith(("loss", "r1"))])
    for name in FILES:
        file = ckpt / f"{name}.safetensors"
        if not file.exists():
            continue
        from safetensors.torch import load_file

        state = load_file(file)
        flat = torch.cat([v.double().flatten() for _, v in sorted(state.items())])
        sha = hashlib.sha256(file.read_bytes()).hexdigest()
        out[name] = {"sum": flat.sum().item(), "abs": flat.abs().sum().item(), "sha256": sha}
    model = Pix2Pix.load(ckpt, "cpu", precision="fp32", compile="off")
    x = torch.linspace(-1, 1, 3 * 40 * 36).reshape(1, 3, 40, 36).sin()
    for mode, eval_mode in (("eval", True), ("paper", False)):
        y = model.translate_tensor(x, eval_mode=eval_mode, seed=3).double()
        out[f"translate_{mode}"] = [y.sum().item(), y.abs().sum().item(), y[0, :, 7, 5].tolist()]
    return out


def numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [n for k in sorted(value) if k != "sha256" for n in numbers(value[k])]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [float(value)]  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_resume_and_translation_match_the_recording(case: str, tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data")
    cfg = tiny_config(data, **CASES[case]).replace(train={"max_steps": 5})
    fit(cfg, tmp_path / "whole")
    got = summary(tmp_path / "whole")
    # resumed after 2 steps: the same files as the uninterrupted run
    fit(cfg.replace(train={"max_steps": 2}), tmp_path / "split")
    fit(cfg, tmp_path / "split", resume=True)
    split = summary(tmp_path / "split")
    assert {k: split[k] for k in FILES if k in split} == {k: got[k] for k in FILES if k in got}
    if RECORD:
        recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        recorded[case] = got
        recorded["cpu"] = cpu_key()
        GOLDEN.write_text(json.dumps(recorded, indent=1) + "\n")
        return
    golden = json.loads(GOLDEN.read_text())
    want = golden[case]
    assert sorted(got) == sorted(want)
    np.testing.assert_allclose(numbers(got), numbers(want), rtol=1e-4, atol=1e-6)
    if golden["cpu"] == cpu_key():  # the recorder's kernels: byte for byte
        for name in FILES:
            if name in want:
                assert got[name]["sha256"] == want[name]["sha256"], name
        assert got == want
