"""ASGI middleware: the upload size limit (413 before the body is read) and the request log."""

from __future__ import annotations

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


async def send_error(send: Any, error: ApiError) -> None:
    """Send `error` as a complete JSON response, closing the connection."""
    body = json.dumps(error.body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class UploadLimit:
    """Refuses request bodies over `max_bytes`: at once when Content-Length says so (the body
    is never read; a client that sent `Expect: 100-continue` never sends it), else as soon as
    the bytes received pass the limit (the app sees `UploadTooLarge` from `receive`)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_error(send, UploadTooLarge(self.max_bytes))
            return
        received = 0

        async def counted() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


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
