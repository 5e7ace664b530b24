"""Official pytorch-CycleGAN-and-pix2pix checkpoints: imported, verified against the
official code's own outputs, and round-tripped for architectures beyond the fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from conftest import error_line, run_cli
from pix2pix.checkpoint import DISCRIMINATOR_FILE, load_weights, read_meta
from pix2pix.config import ModelConfig
from pix2pix.interop import import_official
from pix2pix.interop.official import unet_keys
from pix2pix.nets import build_discriminator, build_generator
from pix2pix.translate import Pix2Pix

FIXTURES = Path(__file__).parent / "fixtures" / "official"
SPEC = json.loads((FIXTURES / "fixtures.json").read_text())
GENERATORS = [name for name, spec in SPEC.items() if spec["kind"] == "G"]


def _batch_stats_no_dropout(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The fixtures' `batch` mode: batch norm on the batch's statistics, dropout off."""
    net.train()
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize("name", GENERATORS)
def test_imported_generator_reproduces_the_official_outputs(name: str, tmp_path: Path) -> None:
    out, fields = import_official(FIXTURES / f"{name}.pth", tmp_path / "ck")
    options = SPEC[name]["options"]
    assert fields["generator"] == options["netG"] and fields["ngf"] == options["ngf"]
    assert (fields["in_channels"], fields["out_channels"]) == (options["input_nc"],
                                                               options["output_nc"])  # fmt: skip
    assert fields["norm"] == options["norm"]
    io = load_file(FIXTURES / f"{name}.io.safetensors")
    model = Pix2Pix.load(out, device="cpu", precision="fp32", compile="off", channels_last="off")
    evald = model.translate_tensor(io["input"], eval_mode=True)
    assert (evald - io["eval"]).abs().max().item() < 1e-5
    batch = _batch_stats_no_dropout(model.generator, io["input"])
    assert (batch - io["batch"]).abs().max().item() < 1e-5


def test_imported_discriminator_reproduces_the_official_outputs(tmp_path: Path) -> None:
    out, fields = import_official(FIXTURES / "unet_256_ngf4_batch.pth", tmp_path / "ck",
                                  discriminator=FIXTURES / "basic_D_ndf4_batch.pth")  # fmt: skip
    assert (fields["discriminator"], fields["ndf"], fields["conditional"]) == ("patch_70", 4, True)
    config, _ = read_meta(out)
    d = load_weights(build_discriminator(config.model, init=False), out / DISCRIMINATOR_FILE)
    io = load_file(FIXTURES / "basic_D_ndf4_batch.io.safetensors")
    with torch.no_grad():
        assert (d.eval()(io["input"]) - io["eval"]).abs().max().item() < 1e-5
    assert (_batch_stats_no_dropout(d, io["input"]) - io["batch"]).abs().max() < 1e-5


# --- other architectures: our nets written in the official layout, imported back -------

CONV_KEEPS_BIAS = {"unet": ("encoder.0.0", "decoder.0.1"), "resnet": ("net.26",)}


def _official_layout(net: nn.Module, cfg: ModelConfig, prefix: str = "") -> dict:
    """`net`'s state dict under the official code's keys (with its bias conventions)."""
    state = net.state_dict()
    if cfg.generator.startswith("unet_"):
        mapping = unet_keys(net.depth)
    else:
        mapping = {m.rsplit(".", 1)[0]: "model." + m.rsplit(".", 1)[0][4:].replace(
            "body", "conv_block") for m in state}  # fmt: skip
    out = {}
    for key, value in state.items():
        module, name = key.rsplit(".", 1)
        kind = "unet" if cfg.generator.startswith("unet_") else "resnet"
        if cfg.norm == "none" and name == "bias" and module not in CONV_KEEPS_BIAS[kind]:
            continue  # the official code's convs have no bias without a norm
        out[prefix + f"{mapping[module]}.{name}"] = value
    return out


@pytest.mark.parametrize("spec", [
    {"generator": "unet_64", "ngf": 3, "in_channels": 4, "out_channels": 1, "norm": "instance"},
    {"generator": "unet_32", "ngf": 5, "in_channels": 3, "out_channels": 3, "norm": "none"},
    {"generator": "resnet_6blocks", "ngf": 4, "in_channels": 1, "out_channels": 3,
     "norm": "batch", "dropout": 0.5},
    {"generator": "resnet_6blocks", "ngf": 4, "in_channels": 3, "out_channels": 3,
     "norm": "batch", "dropout": 0.0},  # its conv_block.6 is a norm: no dropout
    {"generator": "resnet_9blocks", "ngf": 2, "in_channels": 3, "out_channels": 3,
     "norm": "none", "dropout": 0.0},
    {"generator": "resnet_9blocks", "ngf": 2, "in_channels": 3, "out_channels": 1,
     "norm": "instance", "dropout": 0.5},  # the official pix2pix resnet_9blocks default
])  # fmt: skip
@pytest.mark.parametrize("prefix", ["", "module.", "_orig_mod."])
def test_other_official_generators_import_exactly(spec: dict, prefix: str, tmp_path: Path) -> None:
    cfg = ModelConfig(**spec)
    torch.manual_seed(0)
    net = build_generator(cfg)
    x = torch.rand(2, cfg.in_channels, 64, 64) * 2 - 1
    _batch_stats_no_dropout(net, x)  # move the running statistics off their defaults
    state = _official_layout(net, cfg, prefix)
    for key in [k for k in state if k.endswith("num_batches_tracked")][:2]:
        del state[key]  # files from PyTorch < 0.4.1 lack some
    torch.save(state, tmp_path / "G.pth")
    out, fields = import_official(tmp_path / "G.pth", tmp_path / "ck")
    assert {k: fields[k] for k in spec} == spec
    assert fields["dropout"] == spec.get("dropout", 0.5)  # U-Nets: the official default
    if cfg.generator.startswith("resnet_"):  # dropout layers where the official code has them
        drops = [m for m in net.modules() if isinstance(m, nn.Dropout)]
        assert len(drops) == (int(cfg.generator[7]) if cfg.dropout else 0)
    model = Pix2Pix.load(out, device="cpu", precision="fp32", compile="off", channels_last="off")
    with torch.no_grad():
        assert torch.allclose(model.translate_tensor(x, eval_mode=True), net.eval()(x), atol=1e-6)


@pytest.mark.parametrize(("disc", "conditional"), [("patch_1", True), ("patch_34", False)])
def test_other_official_discriminators_import(disc: str, conditional: bool, tmp_path) -> None:
    cfg = ModelConfig(generator="unet_32", ngf=2, ndf=3, in_channels=3, out_channels=3,
                      discriminator=disc, conditional=conditional)  # fmt: skip
    g, d = build_generator(cfg), build_discriminator(cfg)
    torch.save(_official_layout(g, cfg), tmp_path / "G.pth")
    torch.save({"model." + k[4:]: v for k, v in d.state_dict().items()}, tmp_path / "D.pth")
    out, fields = import_official(tmp_path / "G.pth", tmp_path / "ck",
                                  discriminator=tmp_path / "D.pth")  # fmt: skip
    assert (fields["discriminator"], fields["ndf"], fields["conditional"]) == (disc, 3, conditional)
    config, _ = read_meta(out)
    back = load_weights(build_discriminator(config.model, init=False), out / DISCRIMINATOR_FILE)
    assert all(torch.equal(back.state_dict()[k], v) for k, v in d.state_dict().items())


# --- errors ------------------------------------------------------------------------------


def test_an_unmappable_key_is_named(tmp_path: Path) -> None:
    state = torch.load(FIXTURES / "unet_128_ngf4_batch_gray2rgb.pth", weights_only=True)
    state["model.model.9.weight"] = torch.zeros(2, 2)
    torch.save(state, tmp_path / "G.pth")
    with pytest.raises(Exception, match=r"cannot map model\.model\.9\.weight \(2, 2\)"):
        import_official(tmp_path / "G.pth", tmp_path / "ck")
    assert not (tmp_path / "ck").exists()


def test_code_in_the_pickle_is_refused(tmp_path: Path) -> None:
    torch.save({"model.1.weight": torch.zeros(1), "hook": print}, tmp_path / "evil.pth")
    with pytest.raises(Exception, match="objects other than tensors"):
        import_official(tmp_path / "evil.pth", tmp_path / "ck")


def test_import_cli_prints_the_inference_and_the_model_translates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    g = FIXTURES / "unet_256_ngf4_batch.pth"
    code, out, err = run_cli(capsys, "import", "official", g, "--out", tmp_path / "ck",
                             "--direction", "BtoA")  # fmt: skip
    assert code == 0, err
    assert "generator      unet_256" in out and "(assumed: not visible" in out
    config, _ = read_meta(tmp_path / "ck")
    assert config.data.direction == "BtoA" and config.model.dropout == 0.5
    code, _, err = run_cli(capsys, "import", "official", g, "--out", tmp_path / "ck")
    assert code == 2 and "already holds a checkpoint" in error_line(err)
    not_d = FIXTURES / "resnet_9blocks_ngf4_instance.pth"
    code, _, err = run_cli(capsys, "import", "official", g, "--out", tmp_path / "c2",
                           "--discriminator", not_d)  # fmt: skip
    assert code == 2 and "not an official PatchGAN" in error_line(err)
    code, _, err = run_cli(capsys, "import", "official", g, "--out", tmp_path / "c3",
                           "--no-dropout", "--generator-name", "unet_128")  # fmt: skip
    assert code == 2 and "where the inferred network needs" in error_line(err)
    from PIL import Image

    Image.new("RGB", (300, 200), (30, 60, 90)).save(tmp_path / "x.png")
    code, _, err = run_cli(capsys, "translate", "--checkpoint", tmp_path / "ck",
                           tmp_path / "x.png", "--out", tmp_path / "o")  # fmt: skip
    assert code == 0, err
    assert Image.open(tmp_path / "o" / "x.png").size == (300, 200)


def test_a_resnets_dropout_is_read_from_its_blocks_not_assumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = ModelConfig(generator="resnet_6blocks", ngf=2, in_channels=3, out_channels=3)
    torch.save(_official_layout(build_generator(cfg), cfg), tmp_path / "G.pth")
    code, out, err = run_cli(capsys, "import", "official", tmp_path / "G.pth", "--out",
                             tmp_path / "ck")  # fmt: skip
    assert code == 0, err
    assert "dropout        0.5\n" in out  # no "(assumed ...)": the file shows it


def test_a_colorization_generator_imports_as_lab(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = ModelConfig(generator="unet_32", ngf=2, in_channels=1, out_channels=2)
    torch.save(_official_layout(build_generator(cfg), cfg), tmp_path / "G.pth")
    code, out, err = run_cli(capsys, "import", "official", tmp_path / "G.pth", "--out",
                             tmp_path / "ck")  # fmt: skip
    assert code == 0, err
    assert "color_space    lab (inferred: 1 -> 2 channels" in out
    assert read_meta(tmp_path / "ck")[0].data.color_space == "lab"
    from PIL import Image

    Image.new("RGB", (40, 32), (200, 120, 40)).save(tmp_path / "x.png")
    code, _, err = run_cli(capsys, "translate", "--checkpoint", tmp_path / "ck",
                           tmp_path / "x.png", "--out", tmp_path / "o")  # fmt: skip
    assert code == 0, err
    with Image.open(tmp_path / "o" / "x.png") as im:  # L* of the input, a*b* predicted
        assert (im.mode, im.size) == ("RGB", (40, 32))
    code, out, err = run_cli(capsys, "import", "official", tmp_path / "G.pth", "--out",
                             tmp_path / "rgb", "--color-space", "rgb")  # fmt: skip
    assert code == 0 and "color_space    rgb (given)" in out
    assert read_meta(tmp_path / "rgb")[0].data.color_space == "rgb"
    g = FIXTURES / "unet_256_ngf4_batch.pth"
    code, _, err = run_cli(capsys, "import", "official", g, "--out", tmp_path / "c",
                           "--color-space", "lab")  # fmt: skip
    assert code == 2 and "needs a 1 -> 2 channel generator" in error_line(err)
    assert not (tmp_path / "c").exists()


def test_overwrite_replaces_only_our_checkpoints_and_never_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    g = FIXTURES / "unet_256_ngf4_batch.pth"
    theirs = tmp_path / "thesis"  # another tool's model folder: it has a config.json too
    theirs.mkdir()
    (theirs / "config.json").write_text('{"model_type": "bert"}')
    (theirs / "chapter1.tex").write_text("years of work")
    for flags in ((), ("--overwrite",)):
        code, _, err = run_cli(capsys, "import", "official", g, "--out", theirs, *flags)
        line = error_line(err)
        assert code == 2 and "does not hold a checkpoint" in line and "--overwrite" not in line
        assert sorted(p.name for p in theirs.iterdir()) == ["chapter1.tex", "config.json"]
    ours = tmp_path / "ck"
    assert run_cli(capsys, "import", "official", g, "--out", ours)[0] == 0
    assert run_cli(capsys, "import", "official", g, "--out", ours, "--overwrite")[0] == 0
    link = tmp_path / "ck_link"  # replaced through a link: the link stays
    link.symlink_to(ours, target_is_directory=True)
    assert run_cli(capsys, "import", "official", g, "--out", link, "--overwrite")[0] == 0
    assert link.is_symlink() and (ours / "generator.safetensors").is_file()
    source = ours / "latest_net_G.pth"  # the input kept inside the folder to replace
    source.write_bytes(g.read_bytes())
    code, _, err = run_cli(capsys, "import", "official", source, "--out", ours, "--overwrite")
    assert code == 2 and f"holds the input {source}" in error_line(err)
    assert source.read_bytes() == g.read_bytes()


def test_a_failed_write_is_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import pix2pix.checkpoint as ckpt_mod

    g, d = FIXTURES / "unet_256_ngf4_batch.pth", FIXTURES / "basic_D_ndf4_batch.pth"
    ours = tmp_path / "ck"
    assert run_cli(capsys, "import", "official", g, "--out", ours)[0] == 0
    kept = {f.name: f.read_bytes() for f in ours.iterdir()}
    calls = []

    def disk_full(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:  # the first weights file went through
            raise OSError(errno.ENOSPC, "No space left on device")
        Path(path).write_bytes(data)

    monkeypatch.setattr(ckpt_mod, "atomic_write_bytes", disk_full)
    for out, flags in ((tmp_path / "new" / "deep" / "ck", ()), (ours, ("--overwrite",))):
        calls.clear()
        code, _, err = run_cli(capsys, "import", "official", g, "--out", out,
                               "--discriminator", d, *flags)  # fmt: skip
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert f"{out}: cannot write the checkpoint (No space left on device)" in error_line(err)
        assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no new/, no .ck.tmp
    assert {f.name: f.read_bytes() for f in ours.iterdir()} == kept
