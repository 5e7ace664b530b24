"""Label maps to photos (issue 28): label inputs one-hot inside the model, the SPADE
generator, the OASIS segmentation discriminator and its losses, trained through the
shared loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from conftest import error_line, run_cli, tiny_config, write_labels
from pix2pix import fit
from pix2pix.config import RunConfig
from pix2pix.data.files.images import save_image
from pix2pix.data.pairs.labels import check_label_map
from pix2pix.errors import ConfigError, UserError
from pix2pix.export import export_checkpoint
from pix2pix.losses import (
    class_balance,
    labelmix_loss,
    labelmix_mask,
    oasis_class_loss,
    oasis_fake_loss,
)
from pix2pix.nets import LabelMap, OASISDiscriminator, SPADEGenerator
from pix2pix.nets.spade import SPADE, SPADEResBlock
from pix2pix.palette import FACADES
from pix2pix.translate import Pix2Pix

COLORS = [c for _, c in FACADES]


def label_config(root: Path, recipe: str = "oasis", **model: object) -> RunConfig:
    """A 32x32 label model (facades palette, BtoA) of 8 filters, 2 epochs of 3 steps."""
    return tiny_config(
        root,
        model={"labels": "palette", "generator": "spade", "ngf": 8, "ndf": 8, **model},
        data={"palette": "facades", "direction": "BtoA"},
        train={"recipe": recipe, "epochs": 1, "decay_epochs": 1},
    )


def test_palette_and_index_maps_become_one_hot() -> None:
    ids = torch.tensor([[0, 3], [11, 5]])
    rgb = torch.tensor([COLORS[i] for i in ids.flatten()], dtype=torch.float32)
    rgb = rgb.T.reshape(1, 3, 2, 2) + torch.tensor([9.0, -7.0, 5.0])[:, None, None]  # JPEG-ish
    onehot = LabelMap(12, COLORS)(rgb / 127.5 - 1)
    assert onehot.shape == (1, 12, 2, 2) and torch.equal(onehot.argmax(1)[0], ids)
    assert torch.equal(onehot.sum(1), torch.ones(1, 2, 2))
    index = LabelMap(12)(ids[None, None].float() / 127.5 - 1)
    assert torch.equal(index.argmax(1)[0], ids) and torch.equal(index, onehot)


def test_maps_of_unknown_colours_or_ids_are_refused(tmp_path: Path) -> None:
    colors = np.asarray(COLORS, np.int32)
    ids = np.random.default_rng(0).integers(0, 12, (8, 8))
    noisy = (colors[ids] + np.random.default_rng(1).integers(-20, 20, (8, 8, 3))).clip(0, 255)
    check_label_map(noisy.astype(np.uint8), tmp_path / "ok.png", (colors, 12))  # near: fine
    gray = np.full((8, 8, 3), 128, np.uint8)  # a photo-like map: far from every colour
    with pytest.raises(UserError, match=r"bad\.png: 100% of its pixels .* RGB \(128, 128, 128\)"):
        check_label_map(gray, tmp_path / "bad.png", (colors, 12))
    index = np.zeros((4, 4, 1), np.uint8)
    index[2, 1] = 12
    with pytest.raises(UserError, match=r"id\.png: class id 12 at pixel \(1, 2\).*num_classes"):
        check_label_map(index, tmp_path / "id.png", (None, 12))


def test_training_on_a_map_of_another_palette_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_labels(tmp_path / "data", count=2)
    save_image(np.full((40, 80, 3), 128, np.uint8), data / "0.png")  # photo | gray "labels"
    args = ["train", "--data", data, "--out", tmp_path / "run", "--labels", "palette",
            "--palette", "facades", "--direction", "BtoA", "--generator", "spade",
            "--ngf", "8", "--load-size", "36", "--crop-size", "32", "--epochs", "1",
            "--decay-epochs", "0"]  # fmt: skip
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "0.png: 100% of its pixels are far from every --palette" in error_line(err)
    code, _, err = run_cli(capsys, *args[:5], "--generator", "spade")
    assert code == 2 and "--generator spade reads label maps; use --labels palette" in error_line(
        err
    )


def test_label_settings_resolve_and_bad_combinations_are_refused() -> None:
    c = RunConfig.from_dict({"model": {"labels": "palette", "generator": "spade"},
                             "data": {"palette": "facades", "crop_size": 128}})  # fmt: skip
    assert (c.model.generator, c.model.num_classes) == ("spade_128", 12)
    with pytest.raises(ConfigError, match="labels index needs num_classes"):
        RunConfig.from_dict({"model": {"labels": "index", "generator": "spade"}})
    with pytest.raises(ConfigError, match="labels palette needs palette"):
        RunConfig.from_dict({"model": {"labels": "palette", "generator": "spade"}})
    with pytest.raises(ConfigError, match="discriminator oasis goes with method oasis"):
        RunConfig.from_dict({"model": {"labels": "index", "num_classes": 3,
                                       "discriminator": "oasis"}})  # fmt: skip
    oasis = RunConfig.from_dict({"model": {"labels": "index", "num_classes": 3},
                                 "train": {"recipe": "oasis"}})  # fmt: skip
    assert (oasis.model.method, oasis.model.discriminator, oasis.model.nz) == ("oasis", "oasis", 64)
    assert (oasis.train.lr, oasis.train.lr_d, oasis.train.lambda_l1) == (1e-4, 4e-4, 0.0)


def test_spade_blocks_follow_the_label_map_locally() -> None:
    torch.manual_seed(0)
    ids = torch.zeros(1, 32, 32, dtype=torch.long)
    ids[:, :, 16:] = 1
    changed = ids.clone()
    changed[:, :8, :8] = 3  # one region changes class
    maps = [F.one_hot(i, 4).permute(0, 3, 1, 2).float() for i in (ids, changed)]
    x = torch.randn(1, 16, 32, 32)
    layer = SPADE(16, 4, "instance", hidden=8)
    with torch.no_grad():
        a, b = (layer(x, m) for m in maps)
    diff = (a - b).abs().mean(1)[0]  # (H, W)
    # two 3x3 convs see 2 pixels around: the change stays in the region and its border
    assert diff[:8, :8].mean() > 1e-3 and diff[10:, :].abs().max() == 0 == diff[:, 10:].max()
    block = SPADEResBlock(16, 8, 4, "instance")  # the second norm's statistics are global
    with torch.no_grad():
        a, b = (block(x, m) for m in maps)
    diff = (a - b).abs().mean(1)[0]
    assert diff[:8, :8].mean() > 10 * diff[12:, 12:].mean()
    torch.manual_seed(0)
    g = SPADEGenerator(4, 3, levels=3, ngf=8, norm="instance")
    with torch.no_grad():
        a, b = (g(m) for m in maps)
    assert (a - b).abs().max() > 1e-3  # the whole generator sees the change


def test_oasis_losses_by_hand() -> None:
    # 2 classes over 4 pixels: class 0 on 3 pixels, class 1 on 1
    onehot = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]]])
    # alpha_c = HW / (K n_c): 4 / (2 * 3), 4 / (2 * 1)
    assert torch.allclose(class_balance(onehot), torch.tensor([2 / 3, 2.0]))
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1] = 2.0  # every pixel says "class 0" (index 1)
    p_cls0 = torch.tensor(2.0).exp() / (torch.tensor(2.0).exp() + 2)
    p_other = 1 / (torch.tensor(2.0).exp() + 2)
    # 3 pixels of class 0 (weight 2/3, -log p_cls0), 1 of class 1 (weight 2, -log p_other)
    expected = (3 * (2 / 3) * -p_cls0.log() + 2 * -p_other.log()) / 4
    assert oasis_class_loss(logits, onehot).item() == pytest.approx(expected.item(), rel=1e-6)
    assert oasis_fake_loss(logits).item() == pytest.approx(-p_other.log().item(), rel=1e-6)


def test_labelmix_cuts_along_the_classes_as_the_paper_says() -> None:
    onehot = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]],
                            [[0.0, 0.0], [0.0, 1.0]]]])  # fmt: skip
    mask = labelmix_mask(onehot, torch.tensor([[1, 0, 1]]))  # classes 0 and 2 real
    assert torch.equal(mask, torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]))
    d_real, d_fake = torch.full((1, 4, 2, 2), 3.0), torch.full((1, 4, 2, 2), -1.0)
    consistent = mask * d_real + (1 - mask) * d_fake
    assert labelmix_loss(consistent, d_real, d_fake, mask).item() == 0.0
    assert labelmix_loss(consistent + 2, d_real, d_fake, mask).item() == pytest.approx(4.0)


def test_oasis_discriminator_segments_every_pixel() -> None:
    d = OASISDiscriminator(3, num_classes=5, ndf=4, levels=3)
    assert d(torch.zeros(2, 3, 16, 24)).shape == (2, 6, 16, 24)


@pytest.mark.parametrize("recipe", ["oasis", "spade"])
def test_label_methods_train_resume_exactly_and_translate(recipe: str, tmp_path: Path) -> None:
    data = write_labels(tmp_path / "data")
    cfg = label_config(data, recipe, **({"discriminator": "patch_16"} if recipe == "spade" else {}))
    whole = fit(cfg, tmp_path / "whole")
    log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    if recipe == "oasis":
        assert {"loss_d_real", "loss_d_fake", "loss_labelmix", "loss_g_gan"} <= set(log[0])
    fit(cfg.replace(train={"max_steps": 2}), tmp_path / "split")
    split = fit(cfg, tmp_path / "split", resume=True)
    for path in whole.glob("*.safetensors"):
        a, b = load_file(path), load_file(split / path.name)
        assert all(torch.equal(a[k], b[k]) for k in a), path.name
    model = Pix2Pix.load(whole, "cpu", precision="fp32", compile="off")
    x = torch.tensor(COLORS, dtype=torch.float32)[torch.arange(64) % 12].T.reshape(1, 3, 8, 8)
    x = F.interpolate(x / 127.5 - 1, size=(40, 56), mode="nearest")  # any size: 40x56
    y = model.translate_tensor(x, eval_mode=True)
    assert y.shape == (1, 3, 40, 56)
    if recipe == "oasis":  # a 64-d code: --samples draws different photos
        z = model.sample_z(2, seed=1)
        ys = [model.translate_tensor(x, eval_mode=True, extra={"z": z[i : i + 1]}) for i in (0, 1)]
        assert (ys[0] - ys[1]).abs().mean() > 1e-4
        assert torch.equal(model.translate_tensor(x, eval_mode=True), y)  # default code: fixed
        # the exported file takes the label image (and the code) and matches PyTorch
        result = export_checkpoint(whole, "onnx", tmp_path / "g.onnx")
        assert (tmp_path / "g.onnx").is_file() and len(result.checks) == 2


def test_oasis_refuses_options_its_step_does_not_have(tmp_path: Path) -> None:
    data = write_labels(tmp_path / "data")
    for train, name in [({"reconstruction": "aligned"}, "reconstruction"),
                        ({"ffl_weight": 1.0}, "ffl_weight")]:  # fmt: skip
        cfg = label_config(data).replace(train={"max_steps": 1, **train})
        with pytest.raises(ConfigError, match=f"{name} with method oasis: not part of its step"):
            fit(cfg, tmp_path / name)


def test_the_labelmix_term_changes_the_step(tmp_path: Path) -> None:
    data = write_labels(tmp_path / "data")
    base = label_config(data).replace(train={"max_steps": 1})
    runs = [
        fit(base.replace(train={"lambda_labelmix": w}), tmp_path / f"lm{w}") for w in (0.0, 10.0)
    ]
    a, b = (load_file(r / "discriminator.safetensors") for r in runs)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_index_label_maps_train_and_are_resized_without_blending(tmp_path: Path) -> None:
    data = write_labels(tmp_path / "data", index=True)
    cfg = tiny_config(data, model={"labels": "index", "num_classes": 12, "generator": "spade",
                                   "ngf": 8}, data={"direction": "BtoA"})  # fmt: skip
    from pix2pix.data.pairs.datasets import PairedDataset
    from pix2pix.data.pairs.labels import label_rule

    ds = PairedDataset(cfg.data, 1, 3, labels=label_rule(cfg))
    for i in range(len(ds)):
        x = ds[(0, i)]["input"]  # 40 -> 36 resized, cropped to 32: ids stay ids
        ids = (x + 1) * 127.5
        assert torch.allclose(ids, ids.round(), atol=1e-3) and ids.max() <= 11
    fit(cfg.replace(train={"max_steps": 1}), tmp_path / "run")


def test_translate_refuses_a_photo_given_to_a_label_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_labels(tmp_path / "data", count=2)
    run = fit(label_config(data).replace(train={"max_steps": 1}), tmp_path / "run")
    labels = tmp_path / "in" / "labels.png"
    labels.parent.mkdir()
    save_image(np.asarray(COLORS, np.uint8)[np.arange(1024).reshape(32, 32) % 12], labels)
    code, _, err = run_cli(capsys, "translate", labels.parent, "--checkpoint", run,
                           "--out", tmp_path / "out")  # fmt: skip
    assert code == 0, err
    save_image(np.full((32, 32, 3), 128, np.uint8), tmp_path / "in" / "photo.png")
    code, _, err = run_cli(capsys, "translate", labels.parent, "--checkpoint", run,
                           "--out", tmp_path / "out2")  # fmt: skip
    assert code == 2 and "photo.png: 100% of its pixels are far" in error_line(err)


def test_a_loaded_model_reads_well_in_a_notebook(tmp_path: Path) -> None:
    import pix2pix

    data = write_labels(tmp_path / "data", count=2)
    run = fit(label_config(data).replace(train={"max_steps": 1}), tmp_path / "run")
    text = repr(pix2pix.load(run, device="cpu", precision="fp32", compile="off"))
    assert text.startswith("Pix2Pix(oasis spade_32, ") and "M parameters, 3 -> 3 channels" in text
    assert "takes z (64); cpu, fp32" in text and str(run) in text and "Speed(" not in text
    # the notebook entry points at the top of the package (0.1's module path still works)
    assert pix2pix.translate_files.__module__ == "pix2pix.translate.files"
    assert callable(pix2pix.evaluate) and pix2pix.evaluate.evaluate.__name__ == "evaluate"
