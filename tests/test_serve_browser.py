"""The demo page in a real browser: headless Chromium uploads a label map, draws a stroke,
and sees the translation appear.

Uses the system's Chromium (Debian package `chromium`; `.ci/run` installs it) through
the playwright package; playwright's own browser download is never used. Skipped only
where /usr/bin/chromium is missing.

The screenshot goes to a temporary folder. To refresh the README's picture with a trained
model: PIX2PIX_SCREENSHOT=docs/serve.png PIX2PIX_SCREENSHOT_CHECKPOINT=runs/demo/run
.venv/bin/pytest tests/test_serve_browser.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from pix2pix.data.files.images import save_image
from pix2pix.data.tools.synthetic import LABEL_COLOURS, draw_labels
from pix2pix.serve.app import create_app
from pix2pix.serve.server import BackgroundServer
from pix2pix.translate import Pix2Pix
from test_serve import make_model

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PALETTE = [tuple(int(v) for v in c) for c in LABEL_COLOURS]  # the synthetic scenes' labels
SUN = 3
GENERATION = "n => Number(document.getElementById('output').dataset.generation || 0) > n"


def generation(page: Page) -> int:
    return int(page.eval_on_selector("#output", "img => Number(img.dataset.generation || 0)"))


def canvas_pixel(page: Page, x: int, y: int) -> list[int]:
    script = "([x, y]) => Array.from(document.getElementById('input')"
    script += ".getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3))"
    return page.evaluate(script, [x, y])


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
def test_page_uploads_draws_and_shows_the_translation(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    trained = os.environ.get("PIX2PIX_SCREENSHOT_CHECKPOINT")
    if trained:
        model = Pix2Pix.load(trained, device="cpu", precision="fp32", compile="off")
    else:
        model = make_model(tmp_path / "ck")  # unet_64, 3 -> 3 channels
    size = model.stride
    labels, _ = draw_labels(size, np.random.default_rng(7))
    scene = tmp_path / "scene.png"
    save_image(LABEL_COLOURS[labels], scene)
    shot = tmp_path / "serve.png"

    foreign, errors = [], []
    with BackgroundServer(create_app(model, palette=PALETTE)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 670})
            page.on("request", lambda r: r.url.startswith((url, "blob:")) or foreign.append(r.url))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_function(GENERATION, arg=0)  # the blank canvas, translated

            # upload: the file is translated and becomes the canvas
            before = generation(page)
            page.set_input_files("#upload", str(scene))
            page.wait_for_function(GENERATION, arg=before)
            width = page.eval_on_selector("#input", "c => c.width")
            assert width == size

            # draw a stroke with the sun's label colour
            page.click(f"#swatches .swatch[data-index='{SUN}']")
            box = page.locator("#input").bounding_box()
            scale = box["width"] / size
            points = [(0.3, 0.2), (0.4, 0.25), (0.5, 0.2)]
            before = generation(page)
            page.mouse.move(
                box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"]
            )
            page.mouse.down()
            for fx, fy in points[1:]:
                page.mouse.move(
                    box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=4
                )
            page.mouse.up()
            page.wait_for_function(GENERATION, arg=before)

            # the stroke holds exactly the palette colour (no anti-aliasing) ...
            at = (int(0.4 * box["width"] / scale), int(0.25 * box["height"] / scale))
            assert canvas_pixel(page, *at) == list(PALETTE[SUN])
            # ... and the translation on screen is an image of the input's size
            natural = page.eval_on_selector(
                "#output", "img => [img.naturalWidth, img.naturalHeight]"
            )
            assert natural == [size, size]
            assert "ms in the model" in page.inner_text("#status")
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert not foreign, f"the page fetched from elsewhere: {foreign}"
    assert not errors, f"the page logged errors: {errors}"
    assert shot.stat().st_size > 10_000
    target = os.environ.get("PIX2PIX_SCREENSHOT")
    if target:
        shutil.copy(shot, target)


OUTPUT_PIXELS = """() => {
  const img = document.getElementById('output');
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const x = c.getContext('2d'); x.drawImage(img, 0, 0);
  return Array.from(x.getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 331 === 0));
}"""


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
def test_page_gives_another_sample_and_walks_between_codes(tmp_path: Path) -> None:
    """A model with a latent code (an imported BicycleGAN): "another sample" changes the
    answer, and the walk's far end is the next sample's code."""
    from playwright.sync_api import sync_playwright

    from pix2pix.interop.bicyclegan import import_bicyclegan

    fixtures = Path(__file__).parent / "fixtures" / "official_bicyclegan"
    name = "facades_like_unet256_input_ngf4"
    ckpt, _ = import_bicyclegan(
        fixtures / f"{name}_net_G.pth", tmp_path / "ck", encoder=fixtures / f"{name}_net_E.pth"
    )
    # the fixture's codes barely move its output (an untrained G): make them count
    from safetensors.torch import load_file, save_file

    weights = load_file(ckpt / "generator.safetensors")
    weights["encoder.0.0.weight"][:, 3:] *= 50  # the 8 code channels beside RGB
    save_file(weights, ckpt / "generator.safetensors")
    model = Pix2Pix.load(ckpt, device="cpu", precision="fp32", compile="off")
    errors: list[str] = []
    with BackgroundServer(create_app(model, palette=PALETTE)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 670})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.select_option("#mode", "eval")
            page.wait_for_function(GENERATION, arg=0)
            assert page.is_visible("#another") and page.is_visible("#walk")

            # settled: the newest request's answer on screen, none in flight (the page's
            # own counters: a slow machine answers one request while the next is sent)
            settled = (
                "n => issued > n && !busy && !again && "
                "Number(document.getElementById('output').dataset.generation) === issued"
            )

            def after(action) -> list[int]:
                page.wait_for_function(settled, arg=0)
                before = page.evaluate("() => issued")
                action()
                page.wait_for_function(settled, arg=before)
                return page.evaluate(OUTPUT_PIXELS)

            scene = tmp_path / "scene.png"  # a busy input: codes show more than on a blank one
            save_image(np.random.default_rng(3).integers(0, 256, (256, 256, 3), np.uint8), scene)
            first = after(lambda: page.set_input_files("#upload", str(scene)))
            second = after(lambda: page.click("#another"))  # code 1
            assert second != first
            walked = after(
                lambda: page.eval_on_selector(
                    "#walk", "el => { el.value = '100'; el.dispatchEvent(new Event('input')); }"
                )
            )
            assert walked != second
            third = after(lambda: page.click("#another"))  # code 2, the walk back at 0
            assert page.eval_on_selector("#walk", "el => el.value") == "0"
            assert third == walked  # the walk ends at the next sample's code
        finally:
            browser.close()
    assert not errors, f"the page logged errors: {errors}"


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
def test_a_drawn_label_map_becomes_a_photo(tmp_path: Path) -> None:
    """A label model (OASIS, facades palette from its checkpoint): the page offers the
    palette's swatches, and a region drawn in another class changes the photo."""
    from playwright.sync_api import sync_playwright

    from conftest import write_labels
    from pix2pix import fit
    from test_labels import label_config

    data = write_labels(tmp_path / "data", size=72)
    cfg = label_config(data).replace(
        data={"load_size": 72, "crop_size": 64}, train={"max_steps": 3}
    )
    model = Pix2Pix.load(fit(cfg, tmp_path / "run"), device="cpu", precision="fp32", compile="off")
    errors: list[str] = []
    with BackgroundServer(create_app(model)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 670})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_function(GENERATION, arg=0)  # the background-only map, translated
            swatches = page.eval_on_selector_all("#swatches .swatch", "s => s.length")
            assert swatches == 12  # the facades palette, read from the checkpoint
            blank = page.evaluate(OUTPUT_PIXELS)
            window = 2  # facades' "window" class
            page.click(f"#swatches .swatch[data-index='{window}']")
            box = page.locator("#input").bounding_box()
            before = generation(page)
            page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.5 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + 0.8 * box["width"], box["y"] + 0.5 * box["height"], steps=6)
            page.mouse.up()
            page.wait_for_function(GENERATION, arg=before)
            side = page.eval_on_selector("#input", "c => c.width")
            assert canvas_pixel(page, side // 2, side // 2) == [3, 127, 252]  # window blue
            drawn = page.evaluate(OUTPUT_PIXELS)
            natural = page.eval_on_selector("#output", "i => [i.naturalWidth, i.naturalHeight]")
            assert natural == [64, 64] and drawn != blank  # the labels became another photo
        finally:
            browser.close()
    assert not errors, f"the page logged errors: {errors}"
