"""ASGI middleware: the upload size limit (413 before the body is read) and the request log."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from .errors import ApiError

log = logging.getLogger("polyasr.server")

Scope = dict[str, Any]


class UploadTooLarge(ApiError):
    """The request body is larger than the server accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the upload is larger than this server's limit of {_size(limit)}",
            param="file",
            code="file_too_large",
        )


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


DRAIN_SECONDS = 30.0
DRAIN_BYTES = 64 << 20


class _Overflow(Exception):
    """Raised from `receive` when the body passes the limit; caught by `UploadLimit`."""


class UploadLimit:
    """Refuses request bodies over `max_bytes` with 413: at once when Content-Length says so,
    else as soon as the bytes received pass the limit. The answer goes out before the rest of
    the body is read; the rest is then read and dropped (up to `DRAIN_BYTES` or `max_bytes`
    more, for at most `DRAIN_SECONDS`) so that a client still sending gets the answer instead
    of a reset. A client that sent `Expect: 100-continue` never sends the body at all."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, receive, skip=b"100-continue" in headers.get(b"expect", b""))
            return
        received = 0
        started = False

        async def counted() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _Overflow
            return message

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _Overflow:
            if not started:
                await self._refuse(send, receive)

    async def _refuse(self, send: Any, receive: Any, skip: bool = False) -> None:
        """Send the 413, drop the rest of the body, then end the response."""
        error = UploadTooLarge(self.max_bytes)
        body = json.dumps(error.body()).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        if not skip:
            try:
                await asyncio.wait_for(self._drain(receive), DRAIN_SECONDS)
            except asyncio.TimeoutError:
                pass
        await send({"type": "http.response.body", "body": b""})

    async def _drain(self, receive: Any) -> None:
        dropped = 0
        while dropped <= max(self.max_bytes, DRAIN_BYTES):
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return
            dropped += len(message.get("body", b""))


class RequestLog:
    """Logs every request: method, path, status, duration and the client's address."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def record(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info(
                '%s "%s %s" %s %.0f ms',
                client[0],
                scope["method"],
                scope["path"],
                status or "disconnected",
                (time.perf_counter() - started) * 1000,
            )
