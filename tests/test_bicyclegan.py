"""BicycleGAN (`--method bicyclegan`): the official models imported exactly, the method
trained, resumed and sampled through the shared loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import error_line, run_cli, tiny_config, write_aligned
from pix2pix import fit
from pix2pix.checkpoint import load_weights
from pix2pix.config import ModelConfig, RunConfig
from pix2pix.errors import ConfigError
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
    whole = fit(cfg, tmp_path / "whole")
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
