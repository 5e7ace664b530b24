"""`pix2pix serve` in-process: POST /translate, limits, bad uploads, concurrency, the page."""

from __future__ import annotations

import io
import struct
import sys
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from conftest import random_image, tiny_config
from pix2pix.checkpoint import Progress, save_checkpoint
from pix2pix.cli import main
from pix2pix.data.files.images import to_tensor, to_uint8
from pix2pix.errors import UserError
from pix2pix.nets import build_generator
from pix2pix.segmentation import parse_palette as parse_label_palette
from pix2pix.serve.app import STATIC, create_app
from pix2pix.serve.drawing import palette_from_config, palette_option, parse_palette
from pix2pix.serve.upload import Limits
from pix2pix.translate import Pix2Pix

PALETTE = [(30, 40, 160), (40, 160, 40), (200, 30, 30), (250, 220, 0), (0, 200, 200)]


def make_model(
    path: Path, generator: str = "unet_64", c_in: int = 3, c_out: int = 3, palette: str = ""
) -> Pix2Pix:
    """A tiny trained-looking model (unet_64 has one dropout layer) loaded for serving."""
    cfg = tiny_config(
        "data",
        model={"generator": generator, "in_channels": c_in, "out_channels": c_out},
        data={"palette": palette},
    )
    torch.manual_seed(0)
    g = build_generator(cfg.model).train()
    with torch.no_grad():
        g(torch.randn(4, c_in, g.stride, g.stride))
    save_checkpoint(path, cfg, Progress(), {"generator": g})
    return Pix2Pix.load(path, device="cpu", precision="fp32", compile="off")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "ck"
    make_model(path)
    return path


@pytest.fixture
def model(checkpoint: Path) -> Pix2Pix:
    return Pix2Pix.load(checkpoint, device="cpu", precision="fp32", compile="off")


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.squeeze()).save(buf, format="PNG")
    return buf.getvalue()


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but that holds almost no data: a
    decompression bomb's shape. Decoding it would fail, so a 413 proves the header check."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def expected_png(model: Pix2Pix, arr: np.ndarray, eval_mode: bool, seed: int) -> np.ndarray:
    y = model.translate_tensor(to_tensor(arr)[None], eval_mode=eval_mode, seed=seed)
    return to_uint8(y[0])


def decode(content: bytes) -> np.ndarray:
    arr = np.asarray(Image.open(io.BytesIO(content)))
    return arr[:, :, None] if arr.ndim == 2 else arr


def post(client: TestClient, data: bytes, **params: object):
    return client.post("/translate", params=params, files={"image": ("x.png", data, "image/png")})


def test_translate_returns_the_models_png(model: Pix2Pix) -> None:
    client = TestClient(create_app(model))
    arr = random_image(np.random.default_rng(0), 50, 70)  # not a multiple of the stride
    for mode, seed in (("paper", 0), ("paper", 3), ("eval", 0)):
        res = post(client, png_bytes(arr), mode=mode, seed=seed)
        assert res.status_code == 200 and res.headers["content-type"] == "image/png"
        assert float(res.headers["x-inference-ms"]) > 0
        got = decode(res.content)
        assert got.shape == (50, 70, 3)
        assert np.array_equal(got, expected_png(model, arr, mode == "eval", seed))
    res = post(client, png_bytes(arr), mode="train")
    assert res.status_code == 422  # an unknown mode is refused, listing the valid ones
    assert "paper" in res.text and "eval" in res.text


def test_grayscale_model_answers_a_grayscale_png(tmp_path: Path) -> None:
    client = TestClient(create_app(make_model(tmp_path / "ck", "unet_32", c_in=1, c_out=1)))
    res = post(client, png_bytes(random_image(np.random.default_rng(1), 40, 40)))
    assert res.status_code == 200
    image = Image.open(io.BytesIO(res.content))
    assert image.mode == "L" and image.size == (40, 40)


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"%PDF-1.4 certainly not an image", 415, "not an image"),
        (b"", 400, "empty"),
        (png_bytes(np.zeros((40, 40, 3), np.uint8))[:60], 400, "cannot be decoded"),
        (header_only_png(3000, 3000), 413, "3000x3000 = 9000000 pixels; the limit is 4194304"),
        (header_only_png(50_000, 50_000), 413, "too large"),  # past Pillow's own bomb limit
    ],
    ids=["pdf", "empty", "truncated", "pixels", "bomb"],
)
def test_bad_uploads_get_a_4xx_and_a_message(
    model: Pix2Pix, data: bytes, status: int, message: str
) -> None:
    res = post(TestClient(create_app(model)), data)
    assert res.status_code == status
    assert res.headers["content-type"] == "application/json"
    assert message in res.json()["detail"]


def test_upload_byte_limit_holds_with_and_without_content_length(model: Pix2Pix) -> None:
    limits = Limits(max_bytes=100_000, max_pixels=4096 * 4096)
    client = TestClient(create_app(model, limits=limits))
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    big = png_bytes(noise)  # incompressible: ~120 kB
    assert 100_000 < len(big) < 100_000 + 64 * 1024  # within the multipart allowance
    res = post(client, big)
    assert res.status_code == 413 and "limit is 0.0954 MB" in res.json()["detail"]

    huge = b"\x00" * 300_000
    res = post(client, huge)  # refused by the body limit, before multipart parsing
    assert res.status_code == 413 and "too large" in res.json()["detail"]

    def chunks():  # a chunked body: no Content-Length to trust
        for i in range(0, len(huge), 16_384):
            yield huge[i : i + 16_384]

    res = client.post(
        "/translate", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert res.status_code == 413 and "too large" in res.json()["detail"]
    assert post(client, png_bytes(noise[:50, :50])).status_code == 200  # the server still works


def test_concurrent_requests_match_sequential_ones(model: Pix2Pix) -> None:
    rng = np.random.default_rng(2)
    jobs = [
        (random_image(rng, 32 + 8 * i, 64 - 4 * i), "eval" if i % 3 == 0 else "paper", i)
        for i in range(8)
    ]
    with TestClient(create_app(model)) as client:
        sequential = [post(client, png_bytes(a), mode=m, seed=s).content for a, m, s in jobs]
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(post, client, png_bytes(a), mode=m, seed=s) for a, m, s in jobs]
            concurrent = [f.result().content for f in futures]
    assert concurrent == sequential
    assert len(set(sequential)) == len(jobs)  # distinct inputs, seeds and modes


def test_inference_runs_off_the_event_loop(model: Pix2Pix, monkeypatch) -> None:
    """While one translation is stuck in the model, the server still answers others."""
    entered, release = threading.Event(), threading.Event()
    original = model.translate_tensor

    def slow(*args, **kwargs):
        entered.set()
        assert release.wait(timeout=30)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "translate_tensor", slow)
    arr = random_image(np.random.default_rng(3), 32, 32)
    with TestClient(create_app(model)) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, client, png_bytes(arr))
        assert entered.wait(timeout=30)
        info = client.get("/info")  # would wait for `release` if inference blocked the loop
        release.set()
        assert info.status_code == 200 and pending.result().status_code == 200


def test_page_and_schema_are_local(model: Pix2Pix) -> None:
    client = TestClient(create_app(model, palette=PALETTE))
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "canvas.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and len(asset.text) > 100
    files = [f for f in STATIC.rglob("*") if f.is_file()]  # the web export's page too
    assert any(f.parent.name == "web" for f in files)
    for file in files:  # nothing fetched from another host: works offline
        assert "http://" not in file.read_text() and "https://" not in file.read_text()
    assert client.get("/docs").status_code == 404  # Swagger UI would come from a CDN
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/translate"]["post"]
    assert "image/png" in op["responses"]["200"]["content"]
    assert {"413", "415"} <= set(op["responses"])
    assert {p["name"] for p in op["parameters"]} == {"mode", "seed", "z_seed", "z_seed2", "z_mix"}
    info = client.get("/info").json()
    assert info["drawing"]["mode"] == "palette"
    assert [tuple(c) for c in info["drawing"]["colours"]] == PALETTE
    assert info["drawing"]["width"] == 32  # the training crop (tiny_config)


def test_drawing_tools_follow_the_model(model: Pix2Pix, tmp_path: Path) -> None:
    pen = TestClient(create_app(model)).get("/info").json()["drawing"]
    assert pen["mode"] == "pen" and pen["colours"] == [[255, 255, 255], [0, 0, 0]]
    gray = make_model(tmp_path / "gray", "unet_32", c_in=1, c_out=3)
    drawing = TestClient(create_app(gray, palette=PALETTE)).get("/info").json()["drawing"]
    assert drawing["mode"] == "pen"  # label colours make no sense for a 1-channel input
    # the checkpoint config's `data.palette` (train --palette) is picked up
    config = tiny_config("data", data={"palette": "[[0, 0, 0], [9, 9, 9]]"})
    assert palette_from_config(config).colors == ((0, 0, 0), (9, 9, 9))  # type: ignore[union-attr]
    assert palette_from_config(tiny_config("data")) is None
    assert parse_palette("1,2,3 4,5,6") == [(1, 2, 3), (4, 5, 6)]
    # serve --palette takes R,G,B lists, and what train --palette takes
    assert palette_option("1,2,3 4,5,6").names == ("label 0", "label 1")
    assert palette_option("facades").names[:2] == ("background", "facade")
    with pytest.raises(UserError, match="entry 1 is \\[4, 5, 256\\]"):
        parse_palette("1,2,3 4,5,256")
    with pytest.raises(UserError, match="'1;2;3' is not R,G,B"):
        parse_palette("1;2;3 1,1,1")


def test_serve_command_binds_loopback_by_default(
    checkpoint: Path, monkeypatch, capsys, caplog
) -> None:
    import pix2pix.serve.server as server

    calls = []
    monkeypatch.setattr(server, "serve", lambda app, host, port: calls.append((host, port)))
    main(["serve", "--checkpoint", str(checkpoint), "--device", "cpu"])
    assert calls == [("127.0.0.1", 8000)]
    assert "http://127.0.0.1:8000/" in capsys.readouterr().out
    assert not caplog.records
    main(["serve", "--checkpoint", str(checkpoint), "--host", "0.0.0.0", "--port", "9"])
    assert calls[-1] == ("0.0.0.0", 9)
    assert "no authentication" in caplog.text  # a warning when reachable from elsewhere
    for bad in (["--palette", "red"], ["--port", "70000"], ["--max-pixels", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["serve", "--checkpoint", str(checkpoint), *bad])
        assert exc.value.code == 2
        assert capsys.readouterr().err.startswith("pix2pix: error: ")
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the extra were not installed
    monkeypatch.delitem(sys.modules, "pix2pix.serve.app")
    with pytest.raises(SystemExit):
        main(["serve", "--checkpoint", str(checkpoint)])
    assert "needs fastapi; install it with pip install 'pix2pix[serve]'" in capsys.readouterr().err


def test_serve_draws_with_the_palette_the_checkpoint_records(tmp_path: Path, monkeypatch) -> None:
    import pix2pix.serve.server as server

    make_model(tmp_path / "ck", "unet_32", palette="facades")
    apps = []
    monkeypatch.setattr(server, "serve", lambda app, host, port: apps.append(app))
    flags = ["serve", "--checkpoint", str(tmp_path / "ck"), "--device", "cpu"]
    main(flags)
    main([*flags, "--palette", "1,2,3 4,5,6"])  # the flag still overrides
    recorded, given = (TestClient(app).get("/info").json()["drawing"] for app in apps)
    assert recorded["mode"] == "palette"
    assert [tuple(c) for c in recorded["colours"]] == list(parse_label_palette("facades").colors)
    assert recorded["names"][:3] == ["background", "facade", "window"]
    assert given["colours"] == [[1, 2, 3], [4, 5, 6]] and given["names"] == ["label 0", "label 1"]


def test_latency_benchmark_reports_its_figures() -> None:
    from benchmarks.serve_latency import measure

    result = measure("unet_32", ngf=4, size=32, requests=2, warmup=1, mode="eval")
    for key in ("round_trip_ms", "model_ms"):
        figures = result[key]
        assert 0 < figures["min"] <= figures["median"] <= figures["max"]
    assert result["model_ms"]["min"] <= result["round_trip_ms"]["max"]


def test_seed_beyond_64_bits_is_a_4xx(model: Pix2Pix) -> None:
    client = TestClient(create_app(model))
    arr = random_image(np.random.default_rng(0), 32, 32)
    assert post(client, png_bytes(arr), seed=2**63 - 1).status_code == 200  # the largest
    for seed in (2**63, 2**64, 2**70, -1):
        res = post(client, png_bytes(arr), seed=seed)
        assert res.status_code == 422 and "seed" in res.text, seed


def test_lab_colorization_model_is_served_in_rgb(tmp_path: Path) -> None:
    cfg = tiny_config("data", model={"generator": "unet_32", "in_channels": 1,
                                     "out_channels": 2}, data={"color_space": "lab"})  # fmt: skip
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ck", cfg, Progress(), {"generator": build_generator(cfg.model)})
    model = Pix2Pix.load(tmp_path / "ck", device="cpu", precision="fp32", compile="off")
    client = TestClient(create_app(model))
    photo = random_image(np.random.default_rng(2), 40, 48)
    res = post(client, png_bytes(photo), mode="eval")
    assert res.status_code == 200
    got = decode(res.content)
    assert got.shape == (40, 48, 3)  # RGB of (the upload's L*, the predicted a*b*)
    assert np.array_equal(got, model.translate_array(photo, eval_mode=True))
    gray = post(client, png_bytes(photo[:, :, :1].copy()), mode="eval")  # gray works too
    assert gray.status_code == 200 and decode(gray.content).shape == (40, 48, 3)


def test_models_the_page_cannot_show_are_refused_at_start_up(tmp_path: Path, capsys) -> None:
    make_model(tmp_path / "ck", "unet_32", c_in=3, c_out=5)
    with pytest.raises(ValueError, match="writes 5 channels"):
        create_app(Pix2Pix.load(tmp_path / "ck", device="cpu"))
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--checkpoint", str(tmp_path / "ck"), "--device", "cpu"])
    assert exc.value.code == 2
    assert "writes 5 channels; use translate or export instead" in capsys.readouterr().err
