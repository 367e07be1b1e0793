"""A batch job: expand the inputs, skip the finished ones, transcribe the rest with an engine,
write each result as it arrives, and write the summary (`DIR/summary.json`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionError, PolyasrError
from ..formats import output_stems, write_atomic
from ..types import ProgressCallback, TranscribeOptions, Transcript
from .inputs import expand_inputs
from .local import ModelSpec, transcribe_local
from .records import Job, is_finished, remove_temporaries, save_result, source_state

ENGINES = ("local", "ray")
SUMMARY = "summary.json"


@dataclass
class Summary:
    """What a batch job did: inputs transcribed now, skipped as already finished, and failed
    (with the reason), plus audio seconds transcribed and wall time."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    model: str = ""
    engine: str = ""

    def fail(self, source: str, reason: str) -> None:
        self.failed.append({"input": source, "error": reason})

    def lines(self) -> list[str]:
        """The summary for people: one line per failure, then the counts."""
        lines = [f"failed: {f['input']}: {f['error']}" for f in self.failed]
        speed = self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0
        lines.append(
            f"{len(self.done)} done, {len(self.skipped)} skipped (already done), "
            f"{len(self.failed)} failed; {self.audio_seconds:.1f} s of audio in "
            f"{self.wall_seconds:.1f} s ({speed:.1f}x real time)"
        )
        return lines


Engine = Callable[[Sequence[Path]], Iterator[tuple[int, "Transcript | PolyasrError"]]]


def run_batch(
    inputs: Sequence[str | Path],
    output_dir: Path,
    spec: ModelSpec,
    options: TranscribeOptions,
    formats: list[str],
    *,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    on_result: Callable[[str, Transcript | PolyasrError], None] | None = None,
) -> Summary:
    """Transcribe every audio file that `inputs` name into `output_dir` (one file per format
    and input, plus `summary.json`); finished inputs are skipped, a failing one never stops
    the job. `on_result` is called with each input and its result as it is written."""
    if engine not in ENGINES:
        raise OptionError(f"unknown engine {engine!r}; use one of: {', '.join(ENGINES)}")
    started = time.perf_counter()
    job = Job.create(spec.name, options, formats)
    summary = Summary(model=job.model, engine=engine)
    found = expand_inputs(inputs)
    for source, reason in found.problems:
        summary.fail(source, reason)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PolyasrError(f"cannot create {output_dir}: {exc.strerror or exc}") from None
    remove_temporaries(output_dir)
    stems = output_stems(found.paths)
    # an input named summary.* keeps its extension, so its JSON never replaces summary.json
    stems = [p.name if s == Path(SUMMARY).stem else s for s, p in zip(stems, found.paths)]
    todo: list[int] = []
    states: list[dict[str, Any]] = []
    for i, path in enumerate(found.paths):
        if is_finished(output_dir, stems[i], path, job):
            summary.skipped.append(str(path))
            continue
        try:
            states.append(source_state(path))
        except OSError as exc:
            summary.fail(str(path), f"cannot read {path}: {exc.strerror or exc}")
            continue
        todo.append(i)
    if todo:
        paths = [found.paths[i] for i in todo]
        results = _engine(engine, spec, options, address, workers, progress)(paths)
        for k, result in results:
            path = paths[k]
            if isinstance(result, Transcript):
                result = _save(output_dir, stems[todo[k]], states[k], job, result)
            if isinstance(result, PolyasrError):
                summary.fail(str(path), str(result))
            else:
                summary.done.append(str(path))
                summary.audio_seconds += result.duration
            if on_result is not None:
                on_result(str(path), result)
    summary.wall_seconds = time.perf_counter() - started
    write_atomic(output_dir / SUMMARY, json.dumps(asdict(summary), indent=2) + "\n")
    return summary


def _save(
    output_dir: Path, stem: str, state: dict[str, Any], job: Job, transcript: Transcript
) -> Transcript | PolyasrError:
    """Write one result; a write that fails becomes this input's error."""
    try:
        save_result(output_dir, stem, state, job, transcript)
    except OSError as exc:
        return PolyasrError(f"cannot write the outputs of {stem}: {exc.strerror or exc}")
    return transcript


def _engine(
    engine: str,
    spec: ModelSpec,
    options: TranscribeOptions,
    address: str | None,
    workers: int | None,
    progress: ProgressCallback | None,
) -> Engine:
    """A function from paths to (index, result) pairs, for the chosen engine."""
    if engine == "ray":
        from .ray_engine import transcribe_on_ray

        spec.check()  # a bad model name fails here, not in every actor

        return lambda paths: transcribe_on_ray(
            paths, spec, options, address=address, workers=workers
        )
    return lambda paths: transcribe_local(paths, spec, options, progress)
