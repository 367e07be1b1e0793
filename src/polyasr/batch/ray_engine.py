"""The Ray engine: Ray Data streams paths to a pool of actors, one model each; the actors read
the audio themselves and send back transcripts as JSON, which the driver writes as they come.

Memory stays flat however many files there are: the driver holds only paths and the rows in
flight, each actor only its current batch of files.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import errors
from ..errors import PolyasrError
from ..types import TranscribeOptions, Transcript
from .local import ModelSpec

INSTALL_HINT = "the ray engine needs Ray: pip install 'polyasr[ray]'"
MAX_FILES_PER_CALL = 16
"""Files an actor transcribes per call. Each call has a cost of its own (measured: 400 tiny
files took 90 s in calls of 4 files, 18 s in calls of 16, on 2 cores); a killed job loses the
calls in flight; memory stays bounded (the pipeline reads a group of files at a time)."""
CALLS_PER_ACTOR = 4
"""Fewer files per call when a job is small, so that every actor gets about this many calls."""


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise PolyasrError(INSTALL_HINT) from None
    return ray


class TranscribeActor:
    """A Ray Data callable class: loads the model once, then transcribes batches of paths."""

    def __init__(self, spec: ModelSpec, options: TranscribeOptions, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.model = spec.load()
        self.options = options

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """{"index", "path"} columns in; {"index", "transcript" (JSON or ""), "error_type",
        "error", "fatal" (an error that stops the job)} out, one row per path."""
        paths = [str(p) for p in batch["path"]]
        try:
            results = self.model.transcribe_batch(paths, self.options)
            fatal = False
        except PolyasrError as exc:  # options this model cannot honour: the job stops
            results, fatal = [exc] * len(paths), True
        out: dict[str, list[Any]] = {
            "index": [],
            "transcript": [],
            "error_type": [],
            "error": [],
            "fatal": [],
        }
        for index, result in zip(batch["index"], results):
            failed = isinstance(result, PolyasrError)
            out["index"].append(int(index))
            out["transcript"].append("" if failed else json.dumps(result.to_dict()))
            out["error_type"].append(type(result).__name__ if failed else "")
            out["error"].append(str(result) if failed else "")
            out["fatal"].append(fatal)
        return out


def transcribe_on_ray(
    paths: Sequence[Path],
    spec: ModelSpec,
    options: TranscribeOptions,
    *,
    address: str | None = None,
    workers: int | None = None,
    files_per_call: int | None = None,
) -> Iterator[tuple[int, Transcript | PolyasrError]]:
    """(index into `paths`, transcript or error) as the actors finish them, in any order.

    Connects to the cluster at `address` (or the one already initialized in this process, or
    starts a local one). `workers` actors (default: one per GPU, else one per two CPUs) share
    the GPUs evenly or take the CPUs. An actor gets `files_per_call` files at a time (default:
    enough calls to balance the actors, at most `MAX_FILES_PER_CALL`). Raises at once when Ray
    is not installed."""
    ray = _import_ray()
    if address is not None:
        _check_reachable(address)
    return _session(ray, paths, spec, options, address, workers, files_per_call)


def _check_reachable(address: str) -> None:
    """Fail in seconds, with one line, when a `host:port` address does not answer (Ray itself
    keeps retrying for minutes)."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise PolyasrError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}"
        ) from None


def _session(
    ray: Any,
    paths: Sequence[Path],
    spec: ModelSpec,
    options: TranscribeOptions,
    address: str | None,
    workers: int | None,
    files_per_call: int | None,
) -> Iterator[tuple[int, Transcript | PolyasrError]]:
    """The results of `_run` in a Ray session: this process's, or one started (and shut
    down) here."""
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            raise PolyasrError(f"cannot start or reach {where}: {_first_line(exc)}") from None
    try:
        yield from _run(ray, paths, spec, options, workers, files_per_call)
    except PolyasrError:
        raise
    except Exception as exc:
        raise _job_error(exc) from None
    finally:
        if started:
            ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _job_error(exc: BaseException) -> PolyasrError:
    """One line about a failure of the Ray job itself (an actor that could not start...)."""
    return PolyasrError(f"the Ray job failed: {type(exc).__name__}: {_first_line(exc)}")


def _run(
    ray: Any,
    paths: Sequence[Path],
    spec: ModelSpec,
    options: TranscribeOptions,
    workers: int | None,
    files_per_call: int | None,
) -> Iterator[tuple[int, Transcript | PolyasrError]]:
    if not paths:
        return
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 1))
    workers = workers or max(1, gpus or cpus // 2)
    workers = min(workers, len(paths))
    per_worker = {"num_gpus": gpus / workers} if gpus else {"num_cpus": max(1, cpus // workers)}
    threads = max(1, cpus // workers)
    rows = [{"index": i, "path": str(p)} for i, p in enumerate(paths)]
    if files_per_call is None:
        balanced = -(-len(rows) // (workers * CALLS_PER_ACTOR))
        files_per_call = max(1, min(MAX_FILES_PER_CALL, balanced))
    blocks = min(len(rows), max(workers, -(-len(rows) // files_per_call)))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        TranscribeActor,
        fn_constructor_kwargs={"spec": spec, "options": options, "threads": threads},
        batch_size=files_per_call,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        **per_worker,
    )
    for row in dataset.iter_rows():
        result = _result(row)
        if row["fatal"]:
            raise result
        yield int(row["index"]), result


def _result(row: dict[str, Any]) -> Transcript | PolyasrError:
    """The transcript, or the error (of its original class) that an actor sent back."""
    if row["error_type"]:
        kind = getattr(errors, str(row["error_type"]), PolyasrError)
        if not (isinstance(kind, type) and issubclass(kind, PolyasrError)):
            kind = PolyasrError
        return kind(str(row["error"]))
    return Transcript.from_dict(json.loads(row["transcript"]))
