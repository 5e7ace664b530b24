"""Translation: any size, paper vs eval inference, files, the Python API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pix2pix
from conftest import random_image, tiny_config
from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.data.files.images import read_image, save_image
from pix2pix.errors import UserError
from pix2pix.nets import build_generator
from pix2pix.nets.inference import crop_box, pad_to_multiple
from pix2pix.runtime import Speed
from pix2pix.translate import Pix2Pix, translate_files


def make_checkpoint(path: Path, generator: str = "unet_32", **data) -> Path:
    cfg = tiny_config(
        "data",
        model={"generator": generator, "in_channels": 3, "out_channels": 3, "ngf": 4},
        data=data,
    )
    torch.manual_seed(0)
    g = build_generator(cfg.model)
    g.train()
    with torch.no_grad():
        g(torch.randn(4, 3, g.stride, g.stride))  # give BN running stats non-trivial values
    save_checkpoint(path, cfg, Progress(), {"generator": g})
    return path


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "ck")


@pytest.mark.parametrize(("h", "w"), [(300, 517), (32, 32), (7, 90), (1, 5)])
def test_pad_to_multiple_and_crop_back(h: int, w: int) -> None:
    x = torch.randn(2, 3, h, w)
    padded, box = pad_to_multiple(x, 32)
    assert padded.shape[2] % 32 == 0 and padded.shape[3] % 32 == 0
    assert padded.shape[2] - h < 32 and padded.shape[3] - w < 32
    assert torch.equal(crop_box(padded, box), x)


def test_padding_reflects() -> None:
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 4, 5)
    padded, (top, left, _, _) = pad_to_multiple(x, 8)
    assert padded[0, 0, 0].tolist() == [1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]
    assert left == 1 and top == 2


def test_translate_keeps_an_arbitrary_size(checkpoint: Path) -> None:
    model = pix2pix.load(checkpoint, device="cpu")
    rng = np.random.default_rng(0)
    out = model.translate(Image.fromarray(random_image(rng, 300, 517)))
    assert out.size == (517, 300) and out.mode == "RGB"


def test_eval_mode_is_deterministic_and_batch_independent(checkpoint: Path) -> None:
    model = Pix2Pix.load(checkpoint, device="cpu")
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    together = model.translate_tensor(x, eval_mode=True)
    alone = model.translate_tensor(x[:1], eval_mode=True, seed=5)
    assert torch.allclose(together[:1], alone, atol=1e-6)


def test_paper_mode_uses_batch_statistics_and_dropout(tmp_path: Path) -> None:
    model = Pix2Pix.load(make_checkpoint(tmp_path / "ck", generator="unet_128"), device="cpu")
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    buffers = {k: v.clone() for k, v in model.generator.state_dict().items()}
    a = model.translate_tensor(x, seed=1)
    b = model.translate_tensor(x, seed=1)
    c = model.translate_tensor(x, seed=2)
    e = model.translate_tensor(x, eval_mode=True)
    assert torch.equal(a, b)  # the seed fixes the dropout noise
    assert not torch.equal(a, c)  # dropout is on
    assert (a - e).abs().max() > 1e-3  # batch statistics, not running averages
    after = model.generator.state_dict()
    assert all(torch.equal(buffers[k], after[k]) for k in buffers)  # nothing updated
    assert not model.generator.training


def test_translate_files_keeps_stems_and_sizes(checkpoint: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    for name, (h, w) in {"a": (40, 40), "b": (40, 40), "c": (33, 50)}.items():
        save_image(random_image(rng, h, w), inputs / f"{name}.jpg")
    model = Pix2Pix.load(checkpoint, device="cpu")
    outs = translate_files(model, [str(inputs)], tmp_path / "out", batch_size=2, eval_mode=True)
    assert [p.name for p in outs] == ["a.png", "b.png", "c.png"]
    assert read_image(outs[2], 3).shape == (33, 50, 3)
    # batching in eval mode does not change the result
    single = translate_files(model, [str(inputs / "a.jpg")], tmp_path / "one", eval_mode=True)
    assert np.array_equal(read_image(single[0], 3), read_image(outs[0], 3))


@pytest.mark.parametrize(("direction", "half"), [("AtoB", 0), ("BtoA", 1)])
def test_aligned_input_translates_the_input_half(tmp_path: Path, direction: str, half: int) -> None:
    model = Pix2Pix.load(make_checkpoint(tmp_path / "ck", direction=direction), device="cpu")
    rng = np.random.default_rng(3)
    a, b = random_image(rng, 32, 32), random_image(rng, 32, 32)
    save_image(np.concatenate([a, b], axis=1), tmp_path / "pair.png")
    save_image((a, b)[half], tmp_path / "half" / "pair.png")
    whole = translate_files(model, [str(tmp_path / "pair.png")], tmp_path / "o1", aligned=True)
    part = translate_files(model, [str(tmp_path / "half")], tmp_path / "o2")
    assert np.array_equal(read_image(whole[0], 3), read_image(part[0], 3))


def test_bad_inputs_are_named_before_anything_is_written(checkpoint: Path, tmp_path: Path) -> None:
    model = Pix2Pix.load(checkpoint, device="cpu")
    save_image(np.zeros((8, 8, 3), np.uint8), tmp_path / "x" / "same.png")
    save_image(np.zeros((8, 8, 3), np.uint8), tmp_path / "y" / "same.png")
    out = tmp_path / "out"
    with pytest.raises(UserError, match="would both be written as same.png"):
        translate_files(model, [str(tmp_path / "x"), str(tmp_path / "y")], out)
    (tmp_path / "x" / "bad.png").write_text("nope")
    with pytest.raises(UserError, match=r"bad\.png: cannot read image"):
        translate_files(model, [str(tmp_path / "x")], out)
    with pytest.raises(UserError, match="missing.png: no such file"):
        translate_files(model, [str(tmp_path / "missing.png")], out)
    assert not out.exists()
    with pytest.raises(UserError, match="width 9 is odd"):
        save_image(np.zeros((8, 9, 3), np.uint8), tmp_path / "z" / "odd.png")
        translate_files(model, [str(tmp_path / "z")], out, aligned=True)


def test_grayscale_model_takes_any_image(tmp_path: Path) -> None:
    cfg = tiny_config("data", model={"in_channels": 1, "out_channels": 1, "ngf": 4})
    save_checkpoint(tmp_path / "ck", cfg, Progress(), {"generator": build_generator(cfg.model)})
    model = pix2pix.load(tmp_path / "ck", device="cpu")
    out = model.translate(Image.new("RGB", (45, 20), (200, 10, 10)))
    assert out.mode == "L" and out.size == (45, 20)


def test_outputs_never_replace_inputs_and_others_only_with_overwrite(
    checkpoint: Path, tmp_path: Path
) -> None:
    model = pix2pix.load(checkpoint, device="cpu")
    photos = tmp_path / "photos"
    for name in ("a", "b"):
        save_image(np.full((32, 32, 3), 40, np.uint8), photos / f"{name}.png")
    originals = {p.name: p.read_bytes() for p in photos.iterdir()}
    # into the inputs' own folder: a.png would be written over a.png
    for overwrite in (False, True):
        with pytest.raises(UserError, match="would overwrite the input"):
            translate_files(model, [str(photos)], photos, overwrite=overwrite, progress=False)
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == originals

    out = tmp_path / "out"
    first = translate_files(model, [str(photos)], out, eval_mode=True, progress=False)
    (out / "a.png").write_bytes(b"the user's edit")
    with pytest.raises(UserError, match=r"a\.png and 1 more already exist\(s\); pass overwrite"):
        translate_files(model, [str(photos)], out, eval_mode=True, progress=False)
    assert (out / "a.png").read_bytes() == b"the user's edit"
    again = translate_files(model, [str(photos)], out, eval_mode=True, progress=False,
                            overwrite=True)  # fmt: skip
    assert again == first and read_image(out / "a.png").shape == (32, 32, 3)


def test_a_failed_translation_leaves_no_empty_folder(checkpoint: Path, tmp_path: Path) -> None:
    model = pix2pix.load(checkpoint, device="cpu")
    save_image(np.zeros((32, 64, 3), np.uint8), tmp_path / "x.png")
    whole = (tmp_path / "x.png").read_bytes()
    (tmp_path / "x.png").write_bytes(whole[: len(whole) // 2])  # the header reads, pixels fail
    with pytest.raises(UserError, match="x.png: cannot read image"):
        translate_files(model, [str(tmp_path / "x.png")], tmp_path / "new" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "x.png"]  # no out/, no new/


def test_a_callers_module_keeps_its_mode_and_weights(tmp_path: Path) -> None:
    # a trainer's generator, handed to Pix2Pix for validation or a benchmark: translating
    # in either mode leaves it as it was (training mode, buffers untouched)
    cfg = tiny_config("data", model={"generator": "unet_64", "in_channels": 3, "out_channels": 3})
    torch.manual_seed(0)
    g = build_generator(cfg.model).train()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    model = Pix2Pix(g, cfg, torch.device("cpu"), Speed("fp32"))
    assert model.generator is g  # fp32 on the CPU: no copy needed
    for eval_mode in (True, False):
        model.translate_tensor(torch.rand(1, 3, 64, 64) * 2 - 1, eval_mode=eval_mode)
        assert g.training and all(m.training for m in g.modules())
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())
    g.eval()
    model.translate_tensor(torch.rand(1, 3, 64, 64) * 2 - 1)  # paper mode, then back to eval
    assert not any(m.training for m in g.modules())


def test_load_takes_the_files_weights_and_falls_back_for_buffers_it_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config("data", model={"in_channels": 3, "out_channels": 3})
    torch.manual_seed(1)
    g = build_generator(cfg.model)
    save_checkpoint(tmp_path / "ck", cfg, Progress(), {"generator": g})
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    g.eval()
    with torch.no_grad():
        expected = g(x)
    # built on the meta device, the file's tensors taken as the weights: none left on meta
    loaded = Pix2Pix.load(tmp_path / "ck", device="cpu", precision="fp32", compile="off")
    assert not any(t.is_meta for t in loaded.generator.state_dict().values())
    assert torch.allclose(loaded.translate_tensor(x, eval_mode=True), expected, atol=1e-6)

    # a network with a buffer that is not saved (non-persistent) is built the usual way
    from pix2pix.methods.pix2pix import Pix2PixMethod

    def with_extra_buffer(*args, **kwargs):
        net = build_generator(*args, **kwargs)
        net.register_buffer("scratch", torch.ones(3), persistent=False)
        return net

    build = classmethod(lambda cls, config, init=True: with_extra_buffer(config.model, init=init))
    monkeypatch.setattr(Pix2PixMethod, "inference_module", build)
    again = Pix2Pix.load(tmp_path / "ck", device="cpu", precision="fp32", compile="off")
    assert torch.equal(again.generator.scratch, torch.ones(3))
    assert torch.allclose(again.translate_tensor(x, eval_mode=True), expected, atol=1e-6)
