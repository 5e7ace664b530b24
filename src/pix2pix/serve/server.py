"""Running the app with uvicorn: in the foreground (`pix2pix serve`) or in a thread."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve `app` until Ctrl-C. Binds the loopback interface unless told otherwise."""
    uvicorn.run(app, host=host, port=port, log_level="info")


class BackgroundServer:
    """`with BackgroundServer(app) as url:` serves `app` on a free loopback port in a thread.

    Readiness is polled (uvicorn's `started` flag), not slept for; leaving the block asks
    the server to exit and joins the thread.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.timeout = timeout
        self.url = ""

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(self.timeout)
