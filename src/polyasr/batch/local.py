"""The local engine: one model in this process, files batched across with `transcribe_stream`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import PolyasrError
from ..pipeline.transcriber import Transcriber
from ..types import ProgressCallback, TranscribeOptions, Transcript


@dataclass(frozen=True)
class ModelSpec:
    """How to load the model: what `polyasr.load` gets (plain data, so it travels to workers)."""

    name: str
    device: str = "auto"
    dtype: str | None = None

    def load(self) -> Transcriber:
        from ..registry import load

        return load(self.name, device=self.device, dtype=self.dtype)

    def check(self) -> None:
        """Raise the `ModelError` that loading would for a name or folder that is not a model,
        without reading the weights (a hub model is downloaded into the cache)."""
        from ..registry import detect_family, resolve_directory

        directory, _ = resolve_directory(self.name)
        detect_family(directory)


def transcribe_local(
    paths: Sequence[Path],
    spec: ModelSpec,
    options: TranscribeOptions,
    progress: ProgressCallback | None = None,
) -> Iterator[tuple[int, Transcript | PolyasrError]]:
    """(index into `paths`, transcript or error), a group of files at a time as each is done."""
    model = spec.load()
    yield from model.transcribe_stream(paths, options, progress=progress)
