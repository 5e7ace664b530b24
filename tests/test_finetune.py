"""Fine-tuning with --init-from: exactly the checkpoint's weights, its architecture, new
optimisers; a fresh discriminator where the checkpoint has none (an imported model)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from conftest import error_line, run_cli, tiny_config
from pix2pix.checkpoint import read_meta
from pix2pix.interop import import_official
from pix2pix.training.finetune import start_from, with_architecture
from pix2pix.training.loop import fit
from pix2pix.training.trainer import Trainer

FIXTURES = Path(__file__).parent / "fixtures" / "official"


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_a_fine_tuned_run_starts_from_exactly_the_checkpoints_weights(
    aligned_data: Path, tmp_path: Path
) -> None:
    base = fit(tiny_config(aligned_data, train={"max_steps": 3}), tmp_path / "base")
    cfg = tiny_config(aligned_data, train={"init_from": str(base), "seed": 5, "ema_decay": 0.9})
    cfg = with_architecture(cfg, {})  # the channels too, resolved in the checkpoint
    trainer = Trainer(cfg, torch.device("cpu"))
    saved = Trainer(read_meta(base)[0], torch.device("cpu"))
    assert not _same(trainer.g, saved.g)  # freshly initialised (another seed) ...
    start_from(trainer, base)
    saved.load_checkpoint(base, 3)
    assert _same(trainer.g, saved.g) and _same(
        trainer.method.d, saved.method.d
    )  # ... now the checkpoint's
    assert _same(trainer.ema.module, saved.g)  # the average starts at G
    assert trainer.steps == 0 and not trainer.method.optimizers["g"][0].state  # new optimiser state


def test_init_from_cli_takes_the_architecture_and_refuses_conflicts(
    aligned_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--data", aligned_data, "--load-size", "36", "--crop-size", "32", "--precision",
              "fp32", "--no-progress", "--no-report", "--max-steps", "2"]  # fmt: skip
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "a", "--generator", "unet_32",
                           "--ngf", "4", "--ndf", "4", *common)  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "b", "--init-from",
                           tmp_path / "a", *common)  # fmt: skip
    assert code == 0, err
    tuned, progress = read_meta(tmp_path / "b" / "latest")
    first, _ = read_meta(tmp_path / "a" / "latest")
    assert tuned.model == first.model and progress.step == 2  # a new run: its own steps
    assert tuned.train.init_from == str(tmp_path / "a")
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "c", "--init-from",
                           tmp_path / "a", "--ngf", "8", *common)  # fmt: skip
    assert code == 2
    assert "--ngf 8 conflicts with --init-from" in error_line(err) and "(--ngf 4)" in err
    assert not (tmp_path / "c").exists()


def test_an_imported_generator_fine_tunes_with_a_fresh_discriminator(
    aligned_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ck, _ = import_official(FIXTURES / "unet_256_ngf4_batch.pth", tmp_path / "imported")
    cfg = tiny_config(aligned_data, train={"init_from": str(ck), "max_steps": 1},
                      data={"load_size": 256, "crop_size": 256})  # fmt: skip
    cfg = with_architecture(cfg, {})
    with caplog.at_level(logging.INFO, logger="pix2pix"):
        fit(cfg, tmp_path / "tuned")
    assert "a new discriminator" in caplog.text
    trainer = Trainer(cfg, torch.device("cpu"))
    start_from(trainer, ck)
    from pix2pix.translate import Pix2Pix

    imported = Pix2Pix.load(ck, device="cpu", precision="fp32", compile="off").generator
    assert _same(trainer.g, imported)
