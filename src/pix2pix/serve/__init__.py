"""`pix2pix serve`: a local web page and HTTP API for a trained model (the `serve` extra).

- `pix2pix.serve.upload`: limits and safe decoding of uploaded images (no web framework);
- `pix2pix.serve.drawing`: what the page lets a user draw with (pen/eraser or a palette);
- `pix2pix.serve.app`: `create_app(model)`, the FastAPI application;
- `pix2pix.serve.server`: running it with uvicorn, in the foreground or in a thread.

This package's `__init__` imports nothing, so the CLI can read the defaults of
`upload.Limits` without FastAPI installed.
"""
