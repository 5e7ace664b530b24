"""Objectives for pairs that do not line up (issue 29): the Gaussian-pyramid L1, the
focal frequency loss, `pix2pix data misalign`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from conftest import tiny_config, write_aligned
from pix2pix import fit
from pix2pix.errors import ConfigError
from pix2pix.losses import (
    adaptive_nce_weights,
    edge_strength,
    focal_frequency_loss,
    gaussian_pyramid,
    patch_nce_loss,
    reconstruction_loss,
    register_target,
)


def test_gaussian_pyramid_levels_by_hand() -> None:
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 4, 4] = 1.0
    levels = gaussian_pyramid(x, 3)
    assert [tuple(t.shape[-2:]) for t in levels] == [(8, 8), (4, 4), (2, 2)]
    # the 5x5 binomial kernel's centre is (6/16)^2; its mass is 1 (a constant stays put)
    assert levels[1][0, 0, 2, 2].item() == pytest.approx(36 / 256)
    # the even taps of [1, 4, 6, 4, 1] / 16 hold half the mass per axis: a quarter is kept
    assert levels[1].sum().item() == pytest.approx(((1 + 6 + 1) / 16) ** 2)
    flat = gaussian_pyramid(torch.full((2, 3, 16, 16), 0.3), 4)
    assert all(torch.allclose(t, torch.full_like(t, 0.3)) for t in flat)
    assert len(gaussian_pyramid(torch.zeros(1, 1, 4, 4), 5)) == 2  # stops before 2 px


def test_pyramid_reconstruction_sums_weighted_level_l1s() -> None:
    torch.manual_seed(0)
    target = torch.rand(1, 3, 16, 16) * 2 - 1
    fake = torch.roll(target, shifts=2, dims=-1)  # two pixels out of register
    fl, tl = gaussian_pyramid(fake, 3), gaussian_pyramid(target, 3)
    by_hand = sum(w * (f - t).abs().mean() for w, f, t in zip((1.0, 2.0, 4.0), fl, tl))
    got = reconstruction_loss(fake, target, "pyramid", levels=3, weights=(1.0, 2.0, 4.0))
    assert got.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert reconstruction_loss(fake, target, "pyramid", levels=1).item() == pytest.approx(
        F.l1_loss(fake, target).item()
    )
    # coarser levels forgive the shift: each level's L1 is smaller than the one before
    errors = [(f - t).abs().mean().item() for f, t in zip(fl, tl)]
    assert errors[0] > errors[1] > errors[2]


def test_register_target_moves_each_tile_back_by_its_own_shift() -> None:
    torch.manual_seed(0)
    fake = torch.rand(1, 3, 32, 32) * 2 - 1
    # the top half of the target is the output moved by (2, -1), the bottom by (-3, 1)
    target = torch.cat(
        [fake.roll((2, -1), (2, 3))[:, :, :16], fake.roll((-3, 1), (2, 3))[:, :, 16:]], 2
    )
    registered = register_target(fake, target, shift=4, tiles=2)
    # away from the tiles' edges (where a moved tile reaches into its neighbour or the
    # replicated border) the registered target is the output exactly
    for y0, x0 in ((0, 0), (0, 16), (16, 0), (16, 16)):
        inner = (slice(None), slice(None), slice(y0 + 4, y0 + 12), slice(x0 + 4, x0 + 12))
        assert torch.equal(registered[inner], fake[inner])
    assert not torch.equal(target[:, :, 4:12, 4:12], fake[:, :, 4:12, 4:12])
    # one tile cannot follow two shifts; a search of 0 pixels leaves the target as it is
    one = register_target(fake, target, shift=4, tiles=1)
    assert (one - fake).abs().mean() > (registered - fake).abs().mean()
    assert torch.equal(register_target(fake, target, shift=0, tiles=2), target)
    # the loss trains the output toward the registered target and never the target
    fake.requires_grad_(True)
    target.requires_grad_(True)
    loss = reconstruction_loss(fake, target, "aligned", shift=4, tiles=2)
    loss.backward()
    assert loss.item() < F.l1_loss(fake, target).item() / 4
    assert target.grad is None and fake.grad.abs().sum() > 0
    assert reconstruction_loss(fake, target, "aligned", shift=0).item() == pytest.approx(
        F.l1_loss(fake, target).item()
    )


def test_an_input_guide_registers_by_correlated_edges() -> None:
    # a one-hot label map of rectangles and a "photo" whose colours differ per class (the
    # luminance of one is not the other's) but whose edges are the map's, moved by (3, -2)
    classes = torch.zeros(1, 3, 40, 40)
    classes[:, 0] = 1
    for k, (y0, y1, x0, x1) in enumerate([(6, 18, 5, 30), (22, 35, 12, 20)], start=1):
        classes[:, :, y0:y1, x0:x1] = 0
        classes[:, k, y0:y1, x0:x1] = 1
    colours = torch.tensor([[0.2, -0.5, 0.9], [0.7, 0.1, -0.8], [-0.3, 0.6, 0.4]])
    photo = torch.einsum("bkhw,kc->bchw", classes, colours)
    moved = photo.roll((3, -2), (2, 3))
    registered = register_target(None, moved, shift=5, tiles=1, guide=classes)
    assert torch.equal(registered[:, :, 5:-5, 5:-5], photo[:, :, 5:-5, 5:-5])
    # per tile: the same edges found where each tile has some
    top = register_target(None, moved, shift=5, tiles=2, guide=classes)
    assert torch.equal(top[:, :, 5:15, 5:15], photo[:, :, 5:15, 5:15])
    # edge strength: |d/dx| + |d/dy| summed over channels
    ramp = torch.arange(4.0).expand(1, 2, 3, 4)
    assert torch.equal(edge_strength(ramp)[0], torch.tensor([[2.0, 2, 2, 0]] * 3))


def test_aligned_trains_g_and_d_on_the_registered_target(tmp_path: Path) -> None:
    """One step of --reconstruction aligned on (input, target) is one step of plain L1 on
    (input, the target registered to G's output): D's real pairs are registered too, so
    D cannot learn that real pairs are the ones out of register."""
    import copy

    from pix2pix.training.trainer import Trainer

    def trainer(**train) -> Trainer:
        torch.manual_seed(0)
        cfg = tiny_config("data", model={"in_channels": 3, "out_channels": 3},
                          train={"precision": "fp32", **train})  # fmt: skip
        return Trainer(cfg, torch.device("cpu"))

    def weights(t: Trainer) -> dict[str, torch.Tensor]:
        return {f"{n}.{k}": v for n, net in (("g", t.g), ("d", t.method.d))
                for k, v in net.named_parameters()}  # fmt: skip

    batch = torch.Generator().manual_seed(1)
    a = torch.rand(2, 3, 32, 32, generator=batch) * 2 - 1
    b = (torch.rand(2, 3, 32, 32, generator=batch) * 2 - 1).roll((2, -1), (2, 3))
    aligned = trainer(reconstruction="aligned", align_shift=3, align_tiles=2, align_guide="output")
    plain = trainer()
    with torch.no_grad():
        torch.manual_seed(2)  # the dropout masks of the step
        fake = copy.deepcopy(plain.g).train()(a)
    registered = register_target(fake, b, 3, 2)
    assert not torch.equal(registered, b)
    torch.manual_seed(2)
    aligned.step(a, b)
    torch.manual_seed(2)
    plain.step(a, registered)
    mine, theirs = weights(aligned), weights(plain)
    assert all(torch.allclose(mine[k], theirs[k], atol=1e-6) for k in mine)
    unregistered = trainer()
    torch.manual_seed(2)
    unregistered.step(a, b)
    d = {k: v for k, v in weights(unregistered).items() if k.startswith("d.")}
    assert any(not torch.allclose(d[k], mine[k], atol=1e-6) for k in d)  # D saw the move


def test_focal_frequency_loss_by_hand() -> None:
    target = torch.rand(1, 1, 8, 8)
    # a constant offset c lives at the DC frequency alone: d_DC = c^2 HW, its weight 1,
    # every other frequency 0, so the mean over the HW frequencies is c^2
    assert focal_frequency_loss(target + 0.5, target).item() == pytest.approx(0.25, rel=1e-5)
    assert focal_frequency_loss(target, target).item() == 0.0
    # two frequencies wrong, one twice as much in amplitude: d = 4e and e; weights 1 and
    # 1/4, so the loss is (4e + e/4) / HW, and only the error's own frequencies count
    h = w = 8
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    wave = torch.cos(2 * torch.pi * xx / w)  # frequency (0, +-1): |F|^2 = HW/4 at each
    fake = target + 0.2 * wave + 0.1 * torch.cos(2 * torch.pi * yy / h)
    e = (0.1**2) * h * w / 4  # the (+-1, 0) pair's d; the (0, +-1) pair's is 4e
    expected = (2 * 4 * e + 2 * e / 4) / (h * w)
    assert focal_frequency_loss(fake, target).item() == pytest.approx(expected, rel=1e-4)


def test_each_option_changes_the_step_and_bad_weights_are_refused(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data")
    runs = {
        "l1": {},
        "pyramid": {"reconstruction": "pyramid", "pyramid_levels": 3},
        "ffl": {"ffl_weight": 10.0},
        "nce": {"nce_weight": 1.0, "nce_layers": "0,1", "nce_patches": 8},
        "aligned": {
            "reconstruction": "aligned",
            "align_shift": 2,
            "align_tiles": 2,
            "align_guide": "output",
        },
    }
    weights = {}
    for name, train in runs.items():
        cfg = tiny_config(data, train={"max_steps": 1, **train})
        weights[name] = load_file(fit(cfg, tmp_path / name) / "generator.safetensors")
    for name in ("pyramid", "ffl", "nce", "aligned"):
        assert not all(torch.equal(weights["l1"][k], weights[name][k]) for k in weights["l1"])
    # the input guide finds these pairs aligned (B is a pixelwise function of A): plain L1;
    # on a copy with B moved it registers B back, and the step changes
    from pix2pix.data.tools.misalign import misalign

    guided = {"max_steps": 1, "reconstruction": "aligned", "align_shift": 2, "align_guide": "input"}
    same = load_file(fit(tiny_config(data, train=guided), tmp_path / "g") / "generator.safetensors")
    assert all(torch.equal(weights["l1"][k], same[k]) for k in same)
    misalign(data, tmp_path / "moved", max_shift=2, max_rotate=0, seed=0)
    for name, train in (("plain", {"max_steps": 1}), ("moved", guided)):
        cfg = tiny_config(tmp_path / "moved", train=train)
        weights[name] = load_file(fit(cfg, tmp_path / f"run_{name}") / "generator.safetensors")
    assert not all(torch.equal(weights["plain"][k], weights["moved"][k]) for k in same)
    with pytest.raises(ConfigError, match="pyramid_weights '1,2': give 3 weights"):
        tiny_config(data, train={"reconstruction": "pyramid", "pyramid_levels": 3,
                                 "pyramid_weights": "1,2"})  # fmt: skip
    with pytest.raises(ConfigError, match="not a list of numbers"):
        tiny_config(data, train={"pyramid_weights": "1,x"})
    with pytest.raises(ConfigError, match="align_tiles 0 is out of range"):
        tiny_config(data, train={"reconstruction": "aligned", "align_tiles": 0})


def test_misalign_moves_one_side_within_bounds_reproducibly(tmp_path: Path) -> None:
    import numpy as np

    from pix2pix.data.files.images import read_image, save_image
    from pix2pix.data.tools.misalign import misalign, warp

    # warp: a pure shift moves a dot by exactly that many pixels
    dot = np.zeros((32, 32, 1), np.uint8)
    dot[10, 12] = 255
    moved = warp(dot, 3.0, -2.0, 0.0, 1.0)
    assert np.unravel_index(moved[:, :, 0].argmax(), (32, 32)) == (8, 15)
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    for i in range(3):
        a = rng.integers(0, 256, (32, 32, 3), np.uint8)
        b = np.zeros((32, 32, 3), np.uint8)
        b[14:18, 14:18] = 255  # a square whose centre shows how far B moved
        save_image(np.concatenate([a, b], axis=1), src / "train" / f"{i}.png")
    first = misalign(src, tmp_path / "one", max_shift=4, max_rotate=2, seed=3)
    again = misalign(src, tmp_path / "two", max_shift=4, max_rotate=2, seed=3)
    other = misalign(src, tmp_path / "three", max_shift=4, max_rotate=2, seed=4)
    assert [p.relative_to(tmp_path / "one") for p in first] == [
        p.relative_to(tmp_path / "two") for p in again
    ]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(first, again))  # by seed
    assert any(x.read_bytes() != y.read_bytes() for x, y in zip(first, other))
    for path in first:
        both = read_image(path)
        original = read_image(src / "train" / path.name)
        assert np.array_equal(both[:, :32], original[:, :32])  # A untouched
        ys, xs = np.nonzero(both[:, 32:, 0] > 127)
        shift = max(abs(ys.mean() - 15.5), abs(xs.mean() - 15.5))
        assert shift <= 4 + 1  # within --max-shift (+1 for the rotation about the centre)


def test_misalign_refuses_to_write_over_its_input(tmp_path: Path, capsys) -> None:
    from conftest import error_line, run_cli

    src = write_aligned(tmp_path / "src", count=2)
    before = sorted((p.name, p.read_bytes()) for p in src.iterdir())
    for out in (src, src / "inside"):
        code, _, err = run_cli(capsys, "data", "misalign", src, "--out", out)
        assert code == 2 and "inside the input" in error_line(err)
    code, _, err = run_cli(
        capsys, "data", "misalign", src, "--out", tmp_path / "o", "--max-shift", "-1"
    )
    assert code == 2 and "--max-shift -1.0 is out of range" in error_line(err)
    assert sorted((p.name, p.read_bytes()) for p in src.iterdir()) == before
    code, out, err = run_cli(capsys, "data", "misalign", src, "--out", tmp_path / "ok")
    assert code == 0 and "wrote 2 file(s)" in out, err


def test_health_names_misalignment_when_l1_plateaus_high_while_d_wins() -> None:
    from pix2pix.training.health import ADVICE, Health

    def feed(health: Health, steps: int, record: dict) -> list[str]:
        out: list[str] = []
        for i in range(steps):  # the outputs follow the targets: no collapse
            t = torch.full((1,), float(i))
            out += health.after_step({"step": i, **record}, t, t)
        return out

    assert feed(Health(plateau=2, patience=2), 6, {"loss_g_l1": 0.4, "d_acc": 0.97}) == [
        "l1_plateau",
        "misaligned",
    ]
    assert feed(Health(plateau=2, patience=2), 6, {"loss_g_l1": 0.4, "d_acc": 0.6}) == [
        "l1_plateau"
    ]  # D does not win: a hard task, not misaligned pairs
    assert feed(Health(plateau=2, patience=2), 6, {"loss_g_l1": 0.05, "d_acc": 0.97}) == [
        "l1_plateau"
    ]  # low: a fitted model
    assert "--reconstruction aligned --align-guide input" in ADVICE["misaligned"]


def test_patch_nce_by_hand_positives_and_negatives() -> None:
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (B=1, N=2 patches, D=2)
    # each query's positive (its own place) at similarity 1, its negative at 0
    expected = torch.log(1 + torch.exp(torch.tensor(-1.0)))
    assert patch_nce_loss(q, q, tau=1.0).item() == pytest.approx(expected.item(), rel=1e-6)
    swapped = q.flip(1)  # the keys' places exchanged: positives at 0, negatives at 1
    worse = torch.log(1 + torch.exp(torch.tensor(1.0)))
    assert patch_nce_loss(q, swapped, tau=1.0).item() == pytest.approx(worse.item(), rel=1e-6)
    assert patch_nce_loss(q, q, tau=0.07) < patch_nce_loss(q, q, tau=1.0)  # sharper


def test_adaptive_nce_weights_by_hand() -> None:
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    k = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # patch 0 agrees (s = 1), patch 1 not (s = 0)
    assert torch.equal(adaptive_nce_weights(q, k, progress=0.0), torch.ones(1, 2))
    full = adaptive_nce_weights(q, k, progress=1.0, sigma=0.5)
    assert full[0, 0].item() == pytest.approx(1.0)
    assert full[0, 1].item() == pytest.approx(torch.exp(torch.tensor(-2.0)).item())  # 1/(2*.25)
    half = adaptive_nce_weights(q, k, progress=0.5, sigma=0.5)
    assert half[0, 1].item() == pytest.approx(0.5 + 0.5 * full[0, 1].item())
    assert torch.equal(adaptive_nce_weights(q, k, progress=7.0), full)  # progress capped at 1
    # weighted NCE: the disagreeing patch's own cross-entropy counts less
    plain, weighted = patch_nce_loss(q, k, tau=1.0), patch_nce_loss(q, k, tau=1.0, weights=full)
    per_patch = [torch.log(1 + torch.exp(torch.tensor(d))).item() for d in (0.0, 0.0)]
    assert plain.item() == pytest.approx(sum(per_patch) / 2)
    ce = F.cross_entropy(torch.tensor([[1.0, 1.0], [0.0, 0.0]]), torch.tensor([0, 1]),
                         reduction="none")  # fmt: skip
    assert weighted.item() == pytest.approx(((ce * full[0]).sum() / full.sum()).item(), rel=1e-6)


def test_adaptive_nce_changes_the_step_and_resumes_exactly(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data")
    base = {"nce_weight": 1.0, "nce_layers": "0,2", "nce_patches": 8, "max_steps": 4}
    plain = fit(tiny_config(data, train=base), tmp_path / "plain")
    cfg = tiny_config(data, train={**base, "nce_adaptive_steps": 2})
    whole = fit(cfg, tmp_path / "whole")
    fit(cfg.replace(train={"max_steps": 2}), tmp_path / "split")
    split = fit(cfg.replace(train={"max_steps": 4}), tmp_path / "split", resume=True)
    a, b, c = (load_file(x / "generator.safetensors") for x in (whole, split, plain))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the weighting changed G's updates


def test_patch_nce_trains_resumes_and_refuses_models_it_cannot_read(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data")
    cfg = tiny_config(data, train={"nce_weight": 1.0, "nce_layers": "0,2", "nce_patches": 8})
    whole = fit(cfg, tmp_path / "whole")
    assert (whole / "nce_head.safetensors").is_file()
    fit(cfg.replace(train={"max_steps": 2}), tmp_path / "split")
    split = fit(cfg, tmp_path / "split", resume=True)
    for name in ("generator", "nce_head"):
        a, b = (load_file(c / f"{name}.safetensors") for c in (whole, split))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    with pytest.raises(ConfigError, match="nce_weight needs a U-Net without a code"):
        fit(tiny_config(data, model={"generator": "resnet_6blocks"},
                        train={"nce_weight": 1.0}), tmp_path / "resnet")  # fmt: skip
    with pytest.raises(ConfigError, match="nce_layers '0,7': unet_32 has encoder levels 0..4"):
        fit(tiny_config(data, train={"nce_weight": 1.0, "nce_layers": "0,7"}), tmp_path / "deep")
