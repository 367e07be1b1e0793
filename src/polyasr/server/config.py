"""Server settings: what `polyasr serve` passes to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..types import DiarizeOptions, TranscribeOptions

GIB = 1 << 30


@dataclass(frozen=True)
class ServerConfig:
    """Limits, batching and defaults shared by every route."""

    api_key: str | None = None
    """Bearer token required on every route except /health and the web page's files; None: open."""
    max_upload_bytes: int = GIB
    """Larger uploads are answered with 413 before their body is read."""
    max_queue: int = 256
    """Requests waiting per model; one more is answered with 503."""
    max_batch: int = 16
    """Recordings transcribed together in one `transcribe_batch` call."""
    batch_wait_s: float = 0.01
    """How long a worker waits for more requests after the first one arrives."""
    options: TranscribeOptions = field(default_factory=TranscribeOptions)
    """Defaults that request fields override (beam size, batch size, VAD, speaker models)."""
    speakers: DiarizeOptions = field(default_factory=DiarizeOptions)
    """Speaker settings for requests that ask for speakers (diarized_json or `diarize=true`)."""
