"""Resume records: what finished, with which model and options, from which version of a file.

Each finished input has a small JSON record in `DIR/.records/STEM.json`, written after all its
output files (each written atomically), so a record on disk means every output is complete. A
re-run skips an input only if its record names the same source path, size and modification
time, the same model and options, and every requested format is on disk.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..formats import WRITERS, write_atomic
from ..types import TranscribeOptions, Transcript

RECORDS = ".records"
_TEMPORARY = re.compile(r"^\..+\.(" + "|".join(WRITERS) + r")\.[^.]+\.tmp$")


@dataclass(frozen=True)
class Job:
    """What makes an output: the model (as named by the user), the options and the formats."""

    model: str
    options: dict[str, Any]
    formats: tuple[str, ...]

    @classmethod
    def create(cls, model: str, options: TranscribeOptions, formats: list[str]) -> Job:
        """The job for `model` and `options`; a local model path is made absolute."""
        if Path(model).exists():
            model = os.path.abspath(model)
        return cls(model, plain(asdict(options)), tuple(formats))


def plain(data: Any) -> Any:
    """`data` as JSON reads it back (tuples become lists), so records compare equal."""
    return json.loads(json.dumps(data))


def source_state(path: Path) -> dict[str, Any]:
    """The version of a source file that a record refers to: its path, size and mtime."""
    stat = path.stat()
    return {"source": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def record_path(output_dir: Path, stem: str) -> Path:
    return output_dir / RECORDS / f"{stem}.json"


def is_finished(output_dir: Path, stem: str, path: Path, job: Job) -> bool:
    """Whether the outputs of `path` under `stem` were made by `job` from its current version."""
    try:
        record = json.loads(record_path(output_dir, stem).read_text(encoding="utf-8"))
        state = source_state(path)
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict):
        return False
    same = all(record.get(key) == value for key, value in state.items())
    same = same and record.get("model") == job.model and record.get("options") == job.options
    written = set(record.get("formats") or [])
    return (
        same
        and written >= set(job.formats)
        and all((output_dir / f"{stem}.{name}").is_file() for name in job.formats)
    )


def save_result(
    output_dir: Path, stem: str, state: dict[str, Any], job: Job, transcript: Transcript
) -> list[Path]:
    """Write `transcript` in every format of `job`, then its record; the files written.

    `state` is the source's `source_state` taken before it was transcribed."""
    written = []
    for name in job.formats:
        target = output_dir / f"{stem}.{name}"
        write_atomic(target, WRITERS[name](transcript))
        written.append(target)
    record = {
        **state,
        "model": job.model,
        "options": job.options,
        "formats": list(job.formats),
        "duration": transcript.duration,
    }
    write_atomic(record_path(output_dir, stem), json.dumps(record, ensure_ascii=False) + "\n")
    return written


def remove_temporaries(output_dir: Path) -> None:
    """Delete the temporary files a killed run left behind (never a finished output)."""
    for folder in (output_dir, output_dir / RECORDS):
        if folder.is_dir():
            for entry in folder.iterdir():
                if _TEMPORARY.match(entry.name) and entry.is_file():
                    entry.unlink(missing_ok=True)
