"""The ComfyUI node pack (integrations/comfyui): loaded as ComfyUI loads a custom node
folder (a package by path, without ComfyUI installed) and called on IMAGE tensors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config, write_aligned
from pix2pix import fit, load
from pix2pix.data.files.images import to_uint8

PACK = Path(__file__).resolve().parents[1] / "integrations" / "comfyui"


@pytest.fixture(scope="module")
def nodes():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "pix2pix_comfy_pack", PACK / "__init__.py", submodule_search_locations=[str(PACK)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    sys.modules.pop(f"{spec.name}.nodes", None)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("comfy")
    data = write_aligned(tmp / "data")
    plain = fit(tiny_config(data, train={"max_steps": 2}), tmp / "plain")
    model = {"method": "bicyclegan", "nz": 4, "discriminator": "patch_16"}  # 2 scales of 32 px
    coded = fit(tiny_config(data, model=model, train={"max_steps": 2}), tmp / "coded")
    return {"plain": plain, "coded": coded}


def test_the_pack_follows_comfyui_conventions(nodes) -> None:  # type: ignore[no-untyped-def]
    assert set(nodes.NODE_CLASS_MAPPINGS) == set(nodes.NODE_DISPLAY_NAME_MAPPINGS)
    for cls in nodes.NODE_CLASS_MAPPINGS.values():
        inputs = cls.INPUT_TYPES()["required"]
        assert callable(getattr(cls(), cls.FUNCTION))
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
        assert all(isinstance(v, tuple) for v in inputs.values())
    translate = nodes.NODE_CLASS_MAPPINGS["Pix2PixTranslate"]
    assert translate.INPUT_TYPES()["required"]["image"] == ("IMAGE",)
    assert translate.RETURN_TYPES == ("IMAGE",)
    text = (PACK / "pyproject.toml").read_text()
    for field in ("[tool.comfy]", "PublisherId", "DisplayName", 'name = "comfyui-pix2pix"'):
        assert field in text


def test_translate_node_matches_the_library(nodes, checkpoints) -> None:  # type: ignore[no-untyped-def]
    (model,) = nodes.NODE_CLASS_MAPPINGS["Pix2PixLoader"]().load(
        str(checkpoints["plain"]), "auto", "cpu"
    )
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
    image = torch.from_numpy(arr).float() / 255  # ComfyUI: (B, H, W, C) in [0, 1]
    (out,) = nodes.NODE_CLASS_MAPPINGS["Pix2PixTranslate"]().translate(
        model, image, 0, 1, 0, "eval"
    )
    assert out.shape == (2, 40, 56, 3) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    ref = load(checkpoints["plain"], "cpu")
    for i in range(2):
        want = np.asarray(ref.translate(arr[i], eval_mode=True))
        got = to_uint8(out[i].permute(2, 0, 1) * 2 - 1)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    # tiled: a 64-px tile over a 96 x 80 image runs and keeps the size
    big = torch.rand(1, 96, 80, 3)
    (tiled,) = nodes.NODE_CLASS_MAPPINGS["Pix2PixTranslate"]().translate(
        model, big, 64, 1, 0, "eval"
    )
    assert tiled.shape == (1, 96, 80, 3)
    # a gray (1-channel) IMAGE is made RGB for a 3-channel model
    (gray,) = nodes.NODE_CLASS_MAPPINGS["Pix2PixTranslate"]().translate(
        model, image[..., :1], 0, 1, 0, "eval"
    )
    assert gray.shape == (2, 40, 56, 3)


def test_samples_need_a_code_and_differ(nodes, checkpoints) -> None:  # type: ignore[no-untyped-def]
    translate = nodes.NODE_CLASS_MAPPINGS["Pix2PixTranslate"]()
    (plain,) = nodes.NODE_CLASS_MAPPINGS["Pix2PixLoader"]().load(
        str(checkpoints["plain"]), "auto", "cpu"
    )
    with pytest.raises(ValueError, match="samples 3: this pix2pix model has no latent code"):
        translate.translate(plain, torch.rand(1, 32, 32, 3), 0, 3, 0, "paper")
    (coded,) = nodes.NODE_CLASS_MAPPINGS["Pix2PixLoader"]().load(
        str(checkpoints["coded"]), "auto", "cpu"
    )
    image = torch.rand(2, 32, 32, 3)
    (out,) = translate.translate(coded, image, 0, 3, 7, "eval")
    assert out.shape == (6, 32, 32, 3)  # sample k of image i at k * 2 + i
    assert not torch.allclose(out[0], out[2]) and not torch.allclose(out[0], out[4])
    (again,) = translate.translate(coded, image, 0, 3, 7, "eval")
    assert torch.equal(out, again)  # the seed draws the same codes
    with pytest.raises(ValueError, match="checkpoint: give a checkpoint folder"):
        nodes.NODE_CLASS_MAPPINGS["Pix2PixLoader"]().load("  ")
