"""The FastAPI application: the demo page, `GET /info` and `POST /translate`.

Everything the page needs is served from this package (`static/`): no CDN, it works
offline. FastAPI's interactive /docs and /redoc pages are switched off because they load
Swagger UI and ReDoc from a CDN; the OpenAPI schema itself is served at /openapi.json.

Requests never share mutable state: each one decodes its own image and encodes its own
PNG in a worker thread (off the event loop); the model runs one request at a time
(`Pix2Pix.translate_tensor` holds a lock), so concurrent requests queue instead of
corrupting each other.
"""

from __future__ import annotations

import time
from importlib.resources import files
from typing import Annotated, Literal

from fastapi import FastAPI, File, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from pix2pix._version import __version__
from pix2pix.config import SEED_MAX
from pix2pix.data.files.encoding import image_channels
from pix2pix.data.files.images import to_depth
from pix2pix.palette import Palette
from pix2pix.serve.drawing import RGB, Drawing, drawing_for
from pix2pix.serve.upload import BodyLimit, Limits, UploadError, decode_upload, encode_png
from pix2pix.translate import Pix2Pix

STATIC = files("pix2pix.serve") / "static"
# The page loads nothing from elsewhere; translations are shown from blob: URLs.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ErrorBody(BaseModel):
    """Why a request was refused."""

    detail: str


class DrawingInfo(BaseModel):
    mode: Literal["pen", "palette"]
    colours: list[RGB]
    names: list[str]
    width: int
    height: int


class ModelInfo(BaseModel):
    """The served model and the page's drawing tools."""

    generator: str
    direction: str
    in_channels: int
    out_channels: int
    stride: int
    max_bytes: int
    max_pixels: int
    drawing: DrawingInfo
    nz: int = 0  # the latent code's size (bicyclegan); 0: one answer per input


def servable(model: Pix2Pix) -> str | None:
    """Why the demo cannot serve `model` (None when it can).

    The page sends and shows ordinary images: 1 or 3 channels in and out. A Lab
    colorization model takes the L* of the uploaded image and answers the RGB of
    (L*, predicted a*b*), as `translate` writes it.
    """
    if model.in_channels not in (1, 3):
        return f"the demo serves 1- or 3-channel models; this one takes {model.in_channels}"
    out = image_channels(model.out_channels, model.color_space)
    if out not in (1, 3):
        return f"the demo shows 1- or 3-channel images; this model writes {out} channels"
    return None


class Translator:
    """Bytes in, PNG bytes out, for one model; safe to call from many threads at once."""

    def __init__(self, model: Pix2Pix, limits: Limits) -> None:
        self.model = model
        self.limits = limits
        # Lab models read colour (or gray) images and compute L* themselves
        self.channels = 3 if model.color_space == "lab" else model.in_channels

    def code(self, z_seed: int, z_seed2: int | None, mix: float) -> dict | None:
        """The extra input of a model with a latent code: code `z_seed` (as translate
        --z-seed draws it), walked a fraction `mix` of the way to code `z_seed2`."""
        if not self.model.extra_inputs:
            return None
        z = self.model.sample_z(1, z_seed)
        if z_seed2 is not None and mix > 0:
            z = (1 - mix) * z + mix * self.model.sample_z(1, z_seed2)
        return {"z": z}

    def __call__(
        self, data: bytes, eval_mode: bool, seed: int, extra: dict | None = None
    ) -> tuple[bytes, float]:
        """(PNG of the translation, milliseconds spent in the model)."""
        arr = decode_upload(data, self.channels, self.limits)  # (H, W, C) uint8
        start = time.perf_counter()
        # (H, W, 1 or 3) at the checkpoint's output depth; lab: RGB of (L*, a*b*)
        y = self.model.translate_array(arr, eval_mode=eval_mode, seed=seed, extra=extra)
        ms = (time.perf_counter() - start) * 1000
        return encode_png(to_depth(y, "uint8")), ms


ERRORS = {
    400: {"model": ErrorBody, "description": "The image cannot be decoded"},
    413: {"model": ErrorBody, "description": "The upload exceeds the byte or pixel limit"},
    415: {"model": ErrorBody, "description": "The upload is not an image in a supported format"},
}


# the query parameters of POST /translate
Mode = Annotated[
    Literal["paper", "eval"],
    Query(
        description="paper: dropout on and batch norm with this image's statistics "
        "(the paper's inference); eval: running statistics, no dropout"
    ),
]
Seed = Annotated[int, Query(ge=0, le=SEED_MAX, description="dropout seed in paper mode")]
ZSeed = Annotated[int, Query(ge=0, le=SEED_MAX, description="a model with a latent code: its code")]
ZSeed2 = Annotated[int | None, Query(ge=0, le=SEED_MAX, description="the code the walk goes to")]
ZMix = Annotated[
    float, Query(ge=0.0, le=1.0, description="how far from z_seed's code to z_seed2's")
]


def create_app(
    model: Pix2Pix, *, palette: Palette | list[RGB] | None = None, limits: Limits | None = None
) -> FastAPI:
    """The web app for `model`; `palette` overrides the checkpoint config's `data.palette`."""
    limits = limits or Limits()
    problem = servable(model)
    if problem:
        raise ValueError(problem)
    drawing: Drawing = drawing_for(model.config, model.in_channels, model.stride, palette)
    translate = Translator(model, limits)
    info = ModelInfo(
        generator=model.config.model.generator,
        direction=model.config.data.direction,
        in_channels=model.in_channels,
        out_channels=model.out_channels,
        stride=model.stride,
        max_bytes=limits.max_bytes,
        max_pixels=limits.max_pixels,
        drawing=DrawingInfo(**drawing.__dict__),
        nz=model.config.model.nz or 0,
    )

    app = FastAPI(
        title="pix2pix",
        version=__version__,
        description="Translate images with a trained pix2pix generator. "
        "The demo page is at /; this schema is at /openapi.json.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimit, limits=limits)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    @app.get("/info", response_model=ModelInfo, summary="The model and the page's tools")
    async def get_info() -> ModelInfo:
        return info

    @app.post(
        "/translate",
        summary="Translate one image",
        description="Send an image file (PNG, JPEG, WebP, BMP or GIF; any size up to the "
        "pixel limit) as the multipart field `image`; the answer is a PNG of the same "
        "size. The header X-Inference-Ms gives the time spent in the model.",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {}}, "description": "The translation (PNG)"},
            **ERRORS,
        },
    )
    async def post_translate(
        image: Annotated[UploadFile, File(description="the input image")],
        mode: Mode = "paper",
        seed: Seed = 0,
        z_seed: ZSeed = 0,
        z_seed2: ZSeed2 = None,
        z_mix: ZMix = 0.0,
    ) -> Response:
        data = await image.read()
        extra = translate.code(z_seed, z_seed2, z_mix)
        try:
            png, ms = await run_in_threadpool(translate, data, mode == "eval", seed, extra)
        except UploadError as exc:
            raise HTTPException(exc.status, exc.message) from None
        return Response(png, media_type="image/png", headers={"X-Inference-Ms": f"{ms:.1f}"})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
