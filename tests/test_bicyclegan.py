"""BicycleGAN (`--method bicyclegan`): the official models imported exactly, the method
trained, resumed and sampled through the shared loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import error_line, random_image, run_cli, tiny_config, write_aligned
from pix2pix import fit
from pix2pix.checkpoint import load_weights
from pix2pix.config import ModelConfig, RunConfig
from pix2pix.data.files.encoding import encode_input
from pix2pix.data.files.images import read_image, save_image
from pix2pix.errors import ConfigError, UserError
from pix2pix.interop.bicyclegan import import_bicyclegan
from pix2pix.methods.bicyclegan import build_encoder, kl_divergence, mode_seeking
from pix2pix.translate import Pix2Pix

FIXTURES = Path(__file__).parent / "fixtures" / "official_bicyclegan"
NAMES = sorted(json.loads((FIXTURES / "fixtures.json").read_text()))
MODULES = ("generator", "encoder", "discriminator", "discriminator2", "generator_ema")


@pytest.mark.parametrize("name", NAMES)
def test_official_models_import_and_match_the_official_outputs(name: str, tmp_path: Path) -> None:
    spec = json.loads((FIXTURES / "fixtures.json").read_text())[name]
    out, fields = import_bicyclegan(
        FIXTURES / f"{name}_net_G.pth", tmp_path / "ck", encoder=FIXTURES / f"{name}_net_E.pth"
    )
    assert fields["where_add"] == spec["where_add"] and fields["nz"] == spec["nz"]
    assert fields["ngf"] == spec["ngf"] and fields["nef"] == spec["nef"]
    assert fields["generator"] == spec["netG"]
    assert (fields["in_channels"], fields["out_channels"]) == (spec["input_nc"], spec["output_nc"])
    io = load_file(FIXTURES / f"{name}.io.safetensors")
    model = Pix2Pix.load(out, "cpu", precision="fp32", compile="off")
    assert sum(p.numel() for p in model.generator.parameters()) == spec["G_params"]
    x = io["input"].expand(len(io["z"]), -1, -1, -1)
    samples = model.translate_tensor(x, eval_mode=True, extra={"z": io["z"]})
    assert (samples - io["samples"]).abs().max() < 1e-4
    assert (samples[0] - samples[1]).abs().mean() > 1e-3  # the codes matter
    encoder = load_weights(build_encoder(model.config), out / "encoder.safetensors").eval()
    assert sum(p.numel() for p in encoder.parameters()) == spec["E_params"]
    with torch.no_grad():
        mu, logvar = encoder(io["target"])
    assert (mu - io["mu"]).abs().max() < 1e-4 and (logvar - io["logvar"]).abs().max() < 1e-4


def test_import_command_prints_the_inference_and_refuses_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    g = FIXTURES / f"{NAMES[0]}_net_G.pth"
    code, out, err = run_cli(capsys, "import", "bicyclegan", g, "--out", tmp_path / "ck")
    assert code == 0, err
    assert "where_add" in out and (tmp_path / "ck" / "generator.safetensors").is_file()
    assert "method: `bicyclegan`" in (tmp_path / "ck" / "README.md").read_text()
    e = FIXTURES / f"{NAMES[0]}_net_E.pth"
    code, _, err = run_cli(capsys, "import", "bicyclegan", e, "--out", tmp_path / "e")
    assert code == 2 and "not a BicycleGAN U-Net generator" in error_line(err)
    assert not (tmp_path / "e").exists()


def _config(data: Path, **train: object) -> RunConfig:
    model = {"method": "bicyclegan", "discriminator": "patch_16"}  # 2 scales of a 32 crop
    return tiny_config(data, model=model, train={"max_steps": 4, "ema_decay": 0.9, **train})


def test_method_defaults_are_the_official_ones_and_a_code_is_required() -> None:
    cfg = RunConfig(model=ModelConfig(method="bicyclegan"))
    m, t = cfg.model, cfg.train
    assert (m.nz, m.where_add, m.norm, m.conditional, m.d_scales, m.dropout) == (
        8, "all", "instance", False, 2, 0.0)  # fmt: skip
    assert (t.gan_loss, t.lambda_l1, t.lambda_kl, t.lambda_z, t.batch_size) == (
        "lsgan", 10.0, 0.01, 0.5, 2)  # fmt: skip
    assert RunConfig().model.nz == 0  # pix2pix keeps the paper's
    with pytest.raises(ConfigError, match="nz 0 with method bicyclegan"):
        from pix2pix.methods.bicyclegan import BicycleGANMethod

        BicycleGANMethod(RunConfig(model=ModelConfig(method="bicyclegan", nz=0)))


def test_trains_resumes_exactly_and_samples_by_seed(tmp_path: Path) -> None:
    data = write_aligned(tmp_path / "data")
    cfg = _config(data)
    whole = fit(cfg.replace(train={"sample_every": 2}), tmp_path / "whole")
    assert len(list((tmp_path / "whole" / "samples").glob("*.png"))) == 2  # a grid per 2 steps
    assert sorted(p.stem for p in whole.glob("*.safetensors")) == sorted(MODULES)
    log = [
        json.loads(line)
        for line in (tmp_path / "whole" / "log.jsonl").read_text().split("\n")
        if line
    ]
    assert {"loss_d", "loss_d2", "loss_kl", "loss_z", "loss_g_l1"} <= set(log[0])
    fit(cfg.replace(train={"max_steps": 2}), tmp_path / "split")
    split = fit(cfg, tmp_path / "split", resume=True)
    for name in MODULES:  # E, both Ds and the average too
        a, b = load_file(whole / f"{name}.safetensors"), load_file(split / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name
    model = Pix2Pix.load(whole, "cpu", precision="fp32", compile="off")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    z = model.sample_z(3, seed=5)
    assert torch.equal(z, model.sample_z(3, seed=5)) and not torch.equal(z, model.sample_z(3, 6))
    ys = [model.translate_tensor(x, eval_mode=True, extra={"z": z[i : i + 1]}) for i in range(3)]
    assert (ys[0] - ys[1]).abs().mean() > 0  # different codes, different outputs
    again = model.translate_tensor(x, eval_mode=True, extra={"z": z[:1]})
    assert torch.equal(again, ys[0])


def test_mode_seeking_and_kl_terms(tmp_path: Path) -> None:
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # KL: 0.5 * sum(mu^2 + e^logvar - 1 - logvar) = 0.5 * (1 + (e - 2))
    assert kl_divergence(mu, logvar).item() == pytest.approx(0.5 * (1 + torch.e - 2))
    f1, f2 = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    z1, z2 = torch.zeros(1, 2), torch.ones(1, 2)
    assert mode_seeking(f1, f2, z1, z2).item() == pytest.approx(1 / (0.5 + 1e-5))
    data = write_aligned(tmp_path / "data")
    plain = fit(_config(data, max_steps=1), tmp_path / "plain")
    seeking = fit(_config(data, max_steps=1, mode_seeking=1.0), tmp_path / "ms")
    log = json.loads((tmp_path / "ms" / "log.jsonl").read_text().splitlines()[0])
    assert log["loss_ms"] > 0
    a, b = (load_file(p / "generator.safetensors") for p in (plain, seeking))
    assert not all(torch.equal(a[k], b[k]) for k in a)  # the term changes G's step


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    name = "facades_like_unet256_input_ngf4"
    out, _ = import_bicyclegan(
        FIXTURES / f"{name}_net_G.pth", tmp_path / "ck", encoder=FIXTURES / f"{name}_net_E.pth"
    )
    return out


def test_translate_writes_k_samples_by_seed_and_the_style_code(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        save_image(random_image(rng, 256, 256), tmp_path / f"{name}.png")
    inputs = [tmp_path / "a.png", tmp_path / "b.png"]
    base = ["translate", "--checkpoint", imported, *inputs, "--eval", "--compile", "off"]
    assert (
        run_cli(capsys, *base, "--out", tmp_path / "k", "--samples", "3", "--z-seed", "4")[0] == 0
    )
    names = sorted(p.name for p in (tmp_path / "k").iterdir())
    assert names == [f"{s}_{k:02d}.png" for s in "ab" for k in range(3)]
    assert (
        run_cli(capsys, *base, "--out", tmp_path / "k2", "--samples", "3", "--z-seed", "4")[0] == 0
    )
    again = read_image(tmp_path / "k2" / "b_02.png")
    assert (again == read_image(tmp_path / "k" / "b_02.png")).all()  # same seed, same samples
    assert not (
        read_image(tmp_path / "k" / "a_00.png") == read_image(tmp_path / "k" / "a_01.png")
    ).all()
    # the Python API gives the file's sample: code k of sample_z(K, seed)
    model = Pix2Pix.load(imported, "cpu", precision="fp32", compile="off")
    z = model.sample_z(3, 4)
    x = encode_input(read_image(inputs[1], 3), "rgb")[None]
    y = model.translate_tensor(x, eval_mode=True, extra={"z": z[2:]})
    assert (y - (torch.from_numpy(again).permute(2, 0, 1)[None] / 127.5 - 1)).abs().max() < 0.01
    # --style: the encoder's mean code of an output-side image
    assert run_cli(capsys, *base[:3], inputs[0], "--eval", "--out", tmp_path / "s",
                   "--style", inputs[1])[0] == 0  # fmt: skip
    mu, logvar = model.encode(x)
    assert mu.shape == (1, 8) and logvar.shape == (1, 8)
    styled = model.translate_tensor(
        encode_input(read_image(inputs[0], 3), "rgb")[None],
        eval_mode=True,
        extra={"z": mu},
    )
    got = torch.from_numpy(read_image(tmp_path / "s" / "a.png")).permute(2, 0, 1)[None]
    assert (styled - (got / 127.5 - 1)).abs().max() < 0.01


def test_bad_sampling_values_are_one_line(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    save_image(random_image(rng, 256, 256), tmp_path / "a.png")
    save_image(random_image(rng, 256, 256, 1), tmp_path / "gray.png")
    base = ["translate", "--checkpoint", imported, tmp_path / "a.png", "--out", tmp_path / "o"]
    for extra, message in (
        (["--samples", "0"], "--samples 0 is out of range"),
        (["--style", tmp_path / "gray.png"], "gray.png: has 1 channel(s)"),
        (["--style", tmp_path / "a.png", "--samples", "2"], "--style gives one code"),
    ):
        code, _, err = run_cli(capsys, *base, *extra)
        assert code == 2 and message in error_line(err), err
    assert not (tmp_path / "o").exists()
    data = write_aligned(tmp_path / "data")
    pix = fit(tiny_config(data, train={"max_steps": 1}), tmp_path / "pix")
    code, _, err = run_cli(capsys, "translate", "--checkpoint", pix, tmp_path / "a.png",
                           "--out", tmp_path / "o", "--samples", "2")  # fmt: skip
    assert code == 2 and "need a model with a latent code" in error_line(err)


def test_evaluate_samples_scores_every_code_and_their_diversity(
    imported: Path, tmp_path: Path
) -> None:
    from pix2pix.evaluation.evaluate import evaluate

    data = write_aligned(tmp_path / "pairs", count=2, size=256)
    kw = {"device": "cpu", "progress": False, "eval_mode": True, "report_pairs": 1}
    _, one = evaluate(imported, data, tmp_path / "one", **kw)
    assert "diversity" not in one and (tmp_path / "one" / "outputs" / "1.png").is_file()
    out, many = evaluate(imported, data, tmp_path / "k", samples=3, z_seed=2, **kw)
    assert many["diversity"]["samples"] == 3 and many["diversity"]["l1"] > 0
    assert many["z_seed"] == 2
    names = sorted(p.name for p in (out / "outputs").iterdir())
    assert names == [f"{i}_{k:02d}.png" for i in (1, 2) for k in range(3)]
    # the files are translate --samples 3 --z-seed 2's: code k of sample_z(3, 2)
    model = Pix2Pix.load(imported, "cpu", precision="fp32", compile="off")
    z = model.sample_z(3, 2)
    files = [read_image(out / "outputs" / f"1_{k:02d}.png") for k in range(3)]
    pixels = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 127.5 - 1 for f in files]
    want = float(
        np.mean([(pixels[i] - pixels[j]).abs().mean() / 2 for i, j in ((0, 1), (0, 2), (1, 2))])
    )
    files2 = [read_image(out / "outputs" / f"2_{k:02d}.png") for k in range(3)]
    pixels2 = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 127.5 - 1 for f in files2]
    want2 = float(
        np.mean([(pixels2[i] - pixels2[j]).abs().mean() / 2 for i, j in ((0, 1), (0, 2), (1, 2))])
    )
    assert many["diversity"]["l1"] == pytest.approx((want + want2) / 2, abs=1e-6)
    assert z.shape == (3, 8)
    assert "3 samples per input" in (out / "index.html").read_text()
    card = (imported / "README.md").read_text()
    assert f"{many['diversity']['l1']:.4g}" in card  # the card's diversity column
    with pytest.raises(ConfigError, match="samples 0 is out of range"):
        evaluate(imported, data, tmp_path / "bad", samples=0, **kw)
    pix_cfg = tiny_config(  # unet_64: the smallest U-Net with dropout
        write_aligned(tmp_path / "d", size=64),
        model={"generator": "unet_64"},
        data={"load_size": 72, "crop_size": 64},
        train={"max_steps": 1},
    )
    pix = fit(pix_cfg, tmp_path / "p")
    with pytest.raises(UserError, match="samples 2 with eval_mode: a pix2pix model"):
        evaluate(pix, data, tmp_path / "bad2", samples=2, **kw)
    # without a code, in the paper's mode: K dropout draws, and their diversity
    pix_data = write_aligned(tmp_path / "pd", count=2, size=64)
    _, drawn = evaluate(pix, pix_data, tmp_path / "pk", samples=2, device="cpu", progress=False)
    assert drawn["diversity"]["samples"] == 2 and drawn["diversity"]["l1"] > 0


def test_diversity_in_features_uses_the_extractor_on_every_sample() -> None:
    from pix2pix.evaluation.diversity import Diversity

    seen = []

    def extractor(batch: torch.Tensor) -> np.ndarray:
        seen.append(len(batch))
        return batch.flatten(1).numpy()[:, :2]  # a stand-in: two numbers per image

    d = Diversity(3, extractor)
    samples = [torch.full((1, 1, 2, 2), v) for v in (0.0, 0.5, -1.0)]
    d.add(samples)
    summary = d.summary()
    assert seen == [3]
    # pixels: |0-0.5|, |0+1|, |0.5+1| on [0, 1] -> 0.25, 0.5, 0.75
    assert summary["l1"] == pytest.approx(0.5)
    # features (v, v): distances sqrt(2) * (0.5, 1, 1.5)
    assert summary["features"] == pytest.approx(np.sqrt(2) * 1.0)


def test_served_page_samples_and_walks_between_codes(imported: Path) -> None:
    import io

    from fastapi.testclient import TestClient

    from pix2pix.serve.app import create_app

    model = Pix2Pix.load(imported, "cpu", precision="fp32", compile="off")
    client = TestClient(create_app(model))
    assert client.get("/info").json()["nz"] == 8
    buf = io.BytesIO()
    from PIL import Image

    Image.fromarray(random_image(np.random.default_rng(1), 256, 256)).save(buf, "PNG")

    def answer(**query: object) -> np.ndarray:
        files = {"image": ("a.png", buf.getvalue(), "image/png")}
        res = client.post("/translate", params={"mode": "eval", **query}, files=files)
        assert res.status_code == 200, res.text
        return np.asarray(Image.open(io.BytesIO(res.content)))

    first, second = answer(z_seed=0), answer(z_seed=1)
    assert (first != second).any()  # another sample
    assert (answer(z_seed=0, z_seed2=1, z_mix=0.0) == first).all()
    assert (answer(z_seed=0, z_seed2=1, z_mix=1.0) == second).all()  # the walk's end
    half = answer(z_seed=0, z_seed2=1, z_mix=0.5)
    assert (half != first).any() and (half != second).any()
    assert (
        client.post(
            "/translate", params={"z_mix": 2}, files={"image": ("a.png", buf.getvalue())}
        ).status_code
        == 422
    )


def test_the_improved_recipe_applies_and_options_outside_the_step_are_refused(
    tmp_path: Path,
) -> None:
    data = write_aligned(tmp_path / "data")
    improved = _config(data, recipe="improved", max_steps=2)
    assert improved.train.augment_policy and improved.model.upsample == "resize-conv"
    augmented = fit(improved, tmp_path / "improved")
    # the recipe without its augmentation (a recipe refills a setting left at "")
    no_augment = _config(data, ema_decay=0.999, max_steps=2).replace(
        model={"upsample": "resize-conv", "discriminator": "patch_16"}
    )
    plain = fit(no_augment, tmp_path / "plain")
    a, b = (load_file(p / "discriminator.safetensors") for p in (augmented, plain))
    assert not all(torch.equal(a[k], b[k]) for k in a)  # DiffAugment changes D's step
    for name, value in (("r1_gamma", 1.0), ("feature_matching", 10.0), ("reconstruction", "l2")):
        with pytest.raises(ConfigError, match=f"{name} with method bicyclegan: not part"):
            fit(_config(data, **{name: value}), tmp_path / name)
        assert not (tmp_path / name / "latest").exists()
