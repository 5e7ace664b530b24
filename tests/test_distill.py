"""`pix2pix distill` / `--method distill`: a student trained from a teacher's outputs,
on inputs alone; an ordinary checkpoint that resumes exactly and improves on its start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import error_line, random_image, run_cli, tiny_config, write_aligned
from pix2pix import fit, load
from pix2pix.data.files.images import save_image
from pix2pix.errors import ConfigError
from pix2pix.methods.distill import student_config


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("teacher")
    ckpt = fit(tiny_config(write_aligned(tmp / "data"), train={"max_steps": 4}), tmp / "run")
    # a teacher whose outputs are far from a fresh student's (mid-gray): a bias per channel
    weights = load_file(ckpt / "generator.safetensors")
    weights["decoder.0.1.bias"] = torch.tensor([1.5, -1.0, 0.5])
    save_file(weights, ckpt / "generator.safetensors")
    return ckpt


def write_inputs(root: Path, count: int = 6) -> Path:
    rng = np.random.default_rng(3)
    root.mkdir(parents=True)
    for i in range(count):
        save_image(random_image(rng, 40, 40), root / f"in{i}.png")
    return root


def gap(student: Path | None, teacher: Path, inputs: Path, config=None) -> float:  # type: ignore[no-untyped-def]
    """Mean |student - teacher| over the inputs, both in eval mode (no dropout noise)."""
    t = load(teacher, "cpu", precision="fp32", compile="off")
    if student is None:  # the student as initialised: its config's networks at step 0
        from pix2pix.methods.base import generator_of
        from pix2pix.translate import Pix2Pix

        torch.manual_seed(config.train.seed)
        s = Pix2Pix(generator_of(config).eval(), config, torch.device("cpu"))
    else:
        s = load(student, "cpu", precision="fp32", compile="off")
    diffs = []
    for path in sorted(inputs.iterdir()):
        from pix2pix.data.files.images import read_image

        arr = read_image(path, 3)
        a, b = (np.asarray(m.translate_array(arr, eval_mode=True), float) for m in (s, t))
        diffs.append(np.abs(a - b).mean())
    return float(np.mean(diffs))


def test_distill_on_inputs_alone_resumes_exactly_and_beats_its_start(
    tmp_path: Path, teacher: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = write_inputs(tmp_path / "inputs")
    code, out, _ = run_cli(capsys, "distill", "--teacher", teacher, "--out", tmp_path / "s",
                           "--inputs", inputs, "--ngf", 4, "--max-steps", 2,
                           "--precision", "fp32", "--device", "cpu")  # fmt: skip
    assert code == 0 and "checkpoint:" in out
    student = tmp_path / "s" / "latest"
    assert (student / "adapter.safetensors").is_file()
    model = load(student, "cpu", compile="off")
    assert model.config.model.ngf == 4 and model.config.data.layout == "inputs"
    # an ordinary checkpoint: translate at any size, no teacher needed
    assert model.translate(np.zeros((50, 70, 3), np.uint8)).size == (70, 50)
    # 40 steps (at a rate that moves a tiny net in so few) close much of the gap
    config = student_config(teacher, ngf=4, inputs=inputs,
                            train={"max_steps": 40, "precision": "fp32", "lr": 5e-3})  # fmt: skip
    trained = fit(config, tmp_path / "fast")
    assert gap(trained, teacher, inputs) < 0.75 * gap(None, teacher, inputs, config)

    # exact resume: 3 + 3 steps give what 6 give
    cfg = config.replace(train={"max_steps": 6, "lr": 2e-4})
    whole = fit(cfg, tmp_path / "whole")
    fit(cfg.replace(train={"max_steps": 3}), tmp_path / "split")
    code, _, _ = run_cli(capsys, "distill", "--out", tmp_path / "split", "--resume",
                         "--max-steps", 6)  # fmt: skip
    assert code == 0
    split = tmp_path / "split" / "latest"
    for name in ("generator", "adapter", "discriminator"):
        a, b = (load_file(c / f"{name}.safetensors") for c in (whole, split))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_distill_sizes_and_refusals(
    tmp_path: Path, teacher: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert student_config(teacher).model.ngf == 2  # tiny: the teacher's 8 / 4
    assert student_config(teacher, size="small").model.ngf == 4
    assert student_config(teacher, data=tmp_path).data.root == str(tmp_path)
    code, _, err = run_cli(capsys, "distill", "--out", tmp_path / "s")
    assert code == 2 and "--teacher is required" in error_line(err)
    data = write_aligned(tmp_path / "data")
    coded = tiny_config(data, model={"method": "bicyclegan", "nz": 4, "discriminator": "patch_16"},
                        train={"max_steps": 1})  # fmt: skip
    bicycle = fit(coded, tmp_path / "bicycle")
    with pytest.raises(ConfigError, match="the teacher must be a pix2pix model"):
        student_config(bicycle)
    code, _, err = run_cli(capsys, "distill", "--teacher", teacher, "--out", tmp_path / "s2",
                           "--inputs", data, "--ngf", 4, "--max-steps", 1,
                           "--distill-features", 1, "--device", "cpu")  # fmt: skip
    assert code == 0
    cfg = student_config(teacher, ngf=4, inputs=data, train={"distill_layers": "0,9"})
    with pytest.raises(ConfigError, match="distill_layers '0,9': give encoder levels 0..4"):
        fit(cfg, tmp_path / "s3")
