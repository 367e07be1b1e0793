"""The FastAPI application: OpenAI's audio routes, models, health, and the web page at `/`."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ..errors import PolyasrError
from .config import ServerConfig
from .errors import ApiError, from_polyasr
from .forms import TranscriptionRequest, parse_request
from .limits import RequestLog, UploadLimit
from .responses import MEDIA_TYPES, done_event, error_event, export, render, segment_events
from .worker import ModelWorker

log = logging.getLogger("polyasr.server")
STATIC = Path(__file__).parent / "static"
MAX_FIELDS = 32


class UploadedAudio:
    """An uploaded file as polyasr reads it: a binary file object named after the upload."""

    def __init__(self, request: TranscriptionRequest) -> None:
        self.file = request.upload.file
        filename = request.upload.filename
        self.name = f"the uploaded file {filename!r}" if filename else "the uploaded file"

    def read(self, size: int = -1) -> bytes:
        return self.file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def seekable(self) -> bool:
        return True


def create_app(models: dict[str, Any], config: ServerConfig | None = None) -> FastAPI:
    """The server over already loaded `models` (id -> `polyasr.load` result): one batching
    worker per model, shared by every client."""
    config = config or ServerConfig()
    workers: dict[str, ModelWorker] = {}
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name, model in models.items():
            workers[name] = ModelWorker(
                name,
                model,
                max_queue=config.max_queue,
                max_batch=config.max_batch,
                batch_wait_s=config.batch_wait_s,
            )
        yield
        for worker in workers.values():
            await asyncio.to_thread(worker.stop)

    app = FastAPI(title="polyasr", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.workers = workers

    guarded = [Depends(api_key_check(config.api_key))]
    install_error_handlers(app)

    @app.post("/v1/audio/transcriptions", dependencies=guarded)
    async def transcriptions(request: Request) -> Response:
        """Speech to text in the spoken language (OpenAI's multipart fields)."""
        return await audio_route(request, "transcribe", workers, config)

    @app.post("/v1/audio/translations", dependencies=guarded)
    async def translations(request: Request) -> Response:
        """Speech to English text (Whisper models)."""
        return await audio_route(request, "translate", workers, config)

    def model_card(name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "polyasr",
            "family": models[name].family,
        }

    @app.get("/v1/models", dependencies=guarded)
    async def list_models() -> dict[str, Any]:
        """The models this server was started with."""
        return {"object": "list", "data": [model_card(name) for name in models]}

    @app.get("/v1/models/{name:path}", dependencies=guarded)
    async def get_model(name: str) -> dict[str, Any]:
        """One served model."""
        if name not in models:
            raise ApiError(404, f"model {name!r} is not served here", code="model_not_found")
        return model_card(name)

    @app.post("/v1/transcripts/export", dependencies=guarded)
    async def export_transcript(request: Request, format: str = "srt") -> Response:
        """A verbose_json transcript as txt, srt, vtt or json (the web page's downloads)."""
        try:
            data = await request.json()
        except ValueError:
            raise ApiError(400, "the body must be a verbose_json transcript") from None
        return Response(export(data, format), media_type="text/plain; charset=utf-8")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and each model's queue, without an API key."""
        return {
            "status": "ok",
            "models": {
                name: {
                    "family": w.model.family,
                    "queued": w.queued,
                    "busy": w.busy,
                    "batches": w.batches,
                }
                for name, w in workers.items()
            },
        }

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(UploadLimit, max_bytes=config.max_upload_bytes)
    app.add_middleware(RequestLog)
    return app


def api_key_check(api_key: str | None) -> Callable[[Request], None]:
    """A dependency that refuses requests without `Authorization: Bearer <api_key>`."""

    def authorized(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "missing API key: send it as 'Authorization: Bearer KEY'",
                code="invalid_api_key",
            )
        if not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(401, "incorrect API key provided", code="invalid_api_key")

    return authorized


def install_error_handlers(app: FastAPI) -> None:
    """Every error, ours or the framework's, answered in OpenAI's shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        error = ApiError(exc.status_code, str(exc.detail), code=f"http_{exc.status_code}")
        return JSONResponse(error.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        error = ApiError(400, str(first.get("msg", "invalid request")), param=param)
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        error = ApiError(500, "internal server error (see the server log)", kind="server_error")
        return JSONResponse(error.body(), status_code=500)


async def audio_route(
    request: Request, task: str, workers: dict[str, ModelWorker], config: ServerConfig
) -> Response:
    """Read the multipart form, queue the recording on its model's worker, answer."""
    try:
        form = await request.form(max_files=1, max_fields=MAX_FIELDS)
    except ClientDisconnect:
        log.info("client disconnected during the upload")
        return Response(status_code=499)
    except HTTPException as exc:
        raise ApiError(400, f"malformed multipart body: {exc.detail}") from None
    try:
        wanted = parse_request(form, task, config.options, config.speakers)
        return await _transcribe(wanted, task, workers)
    finally:
        await form.close()


async def _stream(worker: ModelWorker, audio: UploadedAudio, options: Any) -> Response:
    """Server-sent events: segments as they are final, then the whole text. The answer
    starts with the first segment (or the result), so that an error still gets its status."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[list | None] = asyncio.Queue()
    future = worker.submit(
        audio, options, lambda segments: loop.call_soon_threadsafe(arrived.put_nowait, segments)
    )
    result = asyncio.wrap_future(future)
    result.add_done_callback(lambda _: arrived.put_nowait(None))
    try:
        first = await arrived.get()
    except asyncio.CancelledError:
        future.cancel()
        raise
    if first is None and isinstance(result.exception(), PolyasrError):
        raise from_polyasr(result.exception()) from None

    async def events() -> AsyncIterator[str]:
        sent, spoken, batch = 0, False, first
        while batch is not None:
            for event in segment_events(batch, sent, spoken):
                spoken = True
                yield event
            sent += len(batch)
            batch = await arrived.get()
        error = result.exception()
        if error is not None:
            log.error("streamed request failed: %s", error)
            yield error_event(str(error) if isinstance(error, PolyasrError) else "internal error")
            return
        transcript = result.result()
        for event in segment_events(transcript.segments[sent:], sent, spoken):
            yield event
        yield done_event(transcript)

    return StreamingResponse(events(), media_type="text/event-stream")


async def _transcribe(
    request: TranscriptionRequest, task: str, workers: dict[str, ModelWorker]
) -> Response:
    worker = workers.get(request.model)
    if worker is None:
        raise ApiError(
            404,
            f"model {request.model!r} is not served here; available: {', '.join(workers)}",
            param="model",
            code="model_not_found",
        )
    try:
        options = worker.model.resolve_options(request.options, {})
    except PolyasrError as exc:
        raise from_polyasr(exc) from None
    if request.upload.size == 0:
        raise ApiError(400, "the uploaded file is empty", param="file", code="invalid_audio")
    if request.stream:
        return await _stream(worker, UploadedAudio(request), options)
    future = worker.submit(UploadedAudio(request), options)
    try:
        transcript = await asyncio.wrap_future(future)
    except PolyasrError as exc:
        raise from_polyasr(exc) from None
    except asyncio.CancelledError:
        future.cancel()
        raise
    body = render(transcript, request.response_format, task, request.words)
    return Response(body, media_type=MEDIA_TYPES[request.response_format])
