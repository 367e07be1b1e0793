"""A polyasr server running in this process on a free 127.0.0.1 port, for the server tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from polyasr.server.app import create_app
from polyasr.server.config import ServerConfig


@contextmanager
def running_server(models: dict[str, Any], config: ServerConfig) -> Iterator[tuple[str, Any]]:
    """(base URL, app) of a server over `models`, stopped when the block ends."""
    app = create_app(models, config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def wait_for(predicate, timeout: float = 30.0) -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=10).json()
