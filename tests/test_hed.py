"""HED edges (`pix2pix data edges --method hed`): the network, its weight files, the tool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from conftest import run_cli
from pix2pix.data.tools.edges import hed, load_hed
from pix2pix.errors import UserError
from pix2pix.nets.hed import HED

ORDINALS = ("One", "Two", "Thr", "Fou", "Fiv")


def converted_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our keys -> the keys of the common PyTorch conversion of the Caffe weights."""
    renamed = {}
    for key, value in state.items():
        part, *rest = key.split(".")
        if part == "fuse":
            renamed[f"moduleCombine.0.{rest[0]}"] = value
        else:
            name = "Vgg" if part == "stages" else "Score"
            renamed[f"module{name}{ORDINALS[int(rest[0])]}.{'.'.join(rest[1:])}"] = value
    return renamed


def gradient_hed() -> HED:
    """A HED whose fused map fires where the per-channel Sobel gradient is large: stage 1
    computes |d/dx| and |d/dy| of each BGR channel and sums them; everything else is 0."""
    model = HED()
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    sobel = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    first, second = model.stages[0][0], model.stages[0][2]
    with torch.no_grad():
        for c in range(3):
            for j, k in enumerate((sobel, -sobel, sobel.T, -sobel.T)):
                first.weight[4 * c + j, c] = k  # ReLU keeps the positive parts
        second.weight[0, :12, 1, 1] = 1.0  # channel 0: the sum of the 12 parts
        model.sides[0].weight[0, 0] = 1.0
        model.fuse.weight[0, 0] = 1.0
        model.fuse.bias[0] = -100.0  # an edge where the summed gradient exceeds 100
    return model.eval()


def test_hed_maps_any_size_to_probabilities_of_that_size() -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        out = HED().eval()(torch.rand(2, 3, 21, 30))
    assert out.shape == (2, 1, 21, 30)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_hed_weights_load_from_both_key_layouts(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = HED().eval()
    state = model.state_dict()
    save_file(state, tmp_path / "hed.safetensors")
    torch.save(converted_layout(state), tmp_path / "converted.pt")
    x = torch.rand(1, 3, 32, 32)
    expected = model(x)
    for name in ("hed.safetensors", "converted.pt"):
        loaded = load_hed(tmp_path / name)
        assert not loaded.training
        assert torch.equal(loaded(x), expected), name


def test_bad_hed_weight_files_get_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match=r"nowhere\.pt: HED weights not found; pass hed_weights FILE"
    ):
        load_hed(tmp_path / "nowhere.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match=r"junk\.safetensors: not readable as HED weights"):
        load_hed(tmp_path / "junk.safetensors")
    (tmp_path / "junk.pt").write_bytes(b"not a pickle either")
    with pytest.raises(UserError, match=r"junk\.pt: not readable as HED weights"):
        load_hed(tmp_path / "junk.pt")
    state = HED().state_dict()
    del state["fuse.weight"]
    save_file(state, tmp_path / "partial.safetensors")
    with pytest.raises(UserError, match=r"partial\.safetensors: lacks HED weights \(fuse\.weight"):
        load_hed(tmp_path / "partial.safetensors")
    state = HED().state_dict()
    state["sides.0.weight"] = torch.zeros(1, 2, 1, 1)
    save_file(state, tmp_path / "shape.safetensors")
    with pytest.raises(UserError, match=r"sides\.0\.weight has shape \(1, 2, 1, 1\)"):
        load_hed(tmp_path / "shape.safetensors")


def square_photo() -> np.ndarray:
    # Background at the weights' BGR mean (so zero padding at the frame is no edge, as long
    # as the input is converted the way the weights expect), a white square inside.
    img = np.empty((40, 40, 3), np.uint8)
    img[:] = (123, 117, 104)  # RGB
    img[10:30, 10:30] = 255  # square with corners (10, 10) and (29, 29)
    return img


def test_hed_edges_of_a_square_lie_on_its_border() -> None:
    edges = hed(square_photo(), gradient_hed(), threshold=0.5)
    assert edges.shape == (40, 40, 1) and edges.dtype == np.uint8
    assert set(np.unique(edges)) == {0, 255}
    ys, xs = np.nonzero(edges[:, :, 0] == 0)
    dist = np.minimum.reduce([abs(ys - 9.5), abs(ys - 29.5), abs(xs - 9.5), abs(xs - 29.5)])
    inside = (ys >= 8) & (ys <= 31) & (xs >= 8) & (xs <= 31)
    assert inside.all() and (dist <= 1).all()  # nothing at the frame, nothing elsewhere
    for side in (ys <= 11, ys >= 28, xs <= 11, xs >= 28):
        assert side.sum() >= 2 * 18
    soft = hed(square_photo(), gradient_hed(), threshold=0.0)
    assert soft[20, 20, 0] == 255 and soft[9, 20, 0] == 0  # 255 * (1 - probability)
    gray = hed(square_photo()[:, :, :1], gradient_hed(), threshold=0.5)
    assert gray.shape == (40, 40, 1) and (gray == 0).any()


def test_cli_makes_a_hed_dataset_and_rejects_missing_weights(capsys, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(square_photo()).save(photos / f"p{i}.png")
    save_file(gradient_hed().state_dict(), tmp_path / "hed.safetensors")
    code, out, err = run_cli(
        capsys, "data", "edges", photos, "--method", "hed",
        "--hed-weights", tmp_path / "hed.safetensors", "--out", tmp_path / "made",
    )  # fmt: skip
    assert code == 0 and "wrote 3 pair(s)" in out, err
    made = np.asarray(Image.open(tmp_path / "made" / "A" / "p0.png"))
    assert np.array_equal(made, hed(square_photo(), gradient_hed())[:, :, 0])
    assert (tmp_path / "made" / "B" / "p0.png").read_bytes() == (photos / "p0.png").read_bytes()
    for extra, expected in (
        ([], "--method hed needs --hed-weights FILE"),
        (["--hed-weights", tmp_path / "none.pt"], "none.pt: HED weights not found"),
        (["--hed-weights", tmp_path / "hed.safetensors", "--threshold", "2"], "--threshold 2.0"),
    ):
        code, _, err = run_cli(
            capsys, "data", "edges", photos, "--method", "hed", "--out", tmp_path / "o", *extra
        )
        lines = [line for line in err.splitlines() if line.startswith("pix2pix: error:")]
        assert code == 2 and len(lines) == 1 and expected in lines[0], err
        assert not (tmp_path / "o").exists()
