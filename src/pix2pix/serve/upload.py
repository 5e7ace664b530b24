"""Uploaded images: size limits checked before decoding, and errors with an HTTP status.

An upload passes three gates, cheapest first:

1. `BodyLimit` (ASGI middleware): a request body over the byte limit is refused with 413
   before it is parsed, whether or not the client sent a Content-Length;
2. the header: Pillow reads only the image header, so a decompression bomb (a small file
   declaring a huge width x height) is refused with 413 before its pixels are decoded;
3. decoding: only PNG, JPEG, WebP, BMP and GIF decoders are tried; anything else is
   refused with 415, a truncated or corrupt file with 400.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pix2pix.data.files.images import array_to_pil, pil_to_array

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
# Multipart framing around the file (boundaries, part headers, the query-less form).
MULTIPART_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """What one upload may be: at most `max_bytes` in the file, `max_pixels` in the image."""

    max_bytes: int = 10 * 2**20
    max_pixels: int = 2048 * 2048

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError(f"limits must be positive, got {self}")


class UploadError(Exception):
    """A rejected upload: `status` is the HTTP status code, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.3g} MB"


def decode_upload(data: bytes, channels: int, limits: Limits) -> np.ndarray:
    """Uploaded file bytes -> (H, W, channels) uint8, or an `UploadError`.

    EXIF orientation is applied, so the image is upright as a browser shows it.
    """
    if len(data) > limits.max_bytes:
        raise UploadError(
            413,
            f"the upload is {_megabytes(len(data))}; the limit is {_megabytes(limits.max_bytes)}",
        )
    if not data:
        raise UploadError(400, "the upload is empty; send an image file")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > limits.max_pixels:
                raise UploadError(
                    413,
                    f"the image is {width}x{height} = {width * height} pixels; the limit is "
                    f"{limits.max_pixels} pixels; send a smaller image",
                )
            image.load()
            return pil_to_array(ImageOps.exif_transpose(image), channels)
    except UnidentifiedImageError:
        raise UploadError(
            415, f"the upload is not an image in a supported format ({', '.join(FORMATS)})"
        ) from None
    except Image.DecompressionBombError as exc:  # Pillow's own limit, above ours
        raise UploadError(413, f"the image is too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UploadError(400, f"the image cannot be decoded ({reason})") from None


def encode_png(arr: np.ndarray) -> bytes:
    """(H, W, 1 or 3) uint8 -> PNG bytes (grayscale or RGB)."""
    buf = io.BytesIO()
    array_to_pil(arr).save(buf, format="PNG")
    return buf.getvalue()


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: refuse request bodies larger than an upload may be, with 413.

    A body may hold `limits.max_bytes` of file plus the multipart framing. It is read here
    (never more than that) and replayed to the application, so a chunked upload without
    Content-Length is bounded too.
    """

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.max_bytes = limits.max_bytes + MULTIPART_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        limit = _megabytes(self.limits.max_bytes)
        detail = f"the request body is too large; uploads are limited to {limit}"
        payload = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
