"""One thread per model that batches queued requests through `transcribe_batch`.

Requests wait in a bounded queue. The worker takes the oldest, waits `batch_wait_s` for company,
then decodes it together with every queued request whose options are equal (up to `max_batch`):
their pieces share the model's batches. Requests with other options keep their place for the
next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..errors import PolyasrError
from ..types import Segment, TranscribeOptions, Transcript
from .errors import ApiError

log = logging.getLogger("polyasr.server")


@dataclass
class Job:
    """One request's audio and options, and the future its result is set on."""

    audio: Any
    options: TranscribeOptions
    listener: Callable[[list[Segment]], None] | None = None
    """Gets the segments as they are final (streamed responses)."""
    future: Future = field(default_factory=Future)


class QueueFull(ApiError):
    """The model's queue is full: the client should retry later."""

    def __init__(self, model: str, limit: int) -> None:
        super().__init__(
            503,
            f"the server is busy: {limit} requests are already waiting for model {model!r}; "
            "retry later",
            code="server_busy",
            kind="server_error",
            headers={"Retry-After": "1"},
        )


class ModelWorker:
    """Serializes one model's work on a thread and batches compatible requests."""

    def __init__(
        self, name: str, model: Any, *, max_queue: int, max_batch: int, batch_wait_s: float
    ) -> None:
        self.name = name
        self.model = model
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self.busy = 0
        """Requests in the batch being decoded now."""
        self.batches = 0
        self._jobs: deque[Job] = deque()
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"polyasr-{name}", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        return len(self._jobs)

    def submit(
        self,
        audio: Any,
        options: TranscribeOptions,
        listener: Callable[[list[Segment]], None] | None = None,
    ) -> Future:
        """Queue one recording; its future gets a `Transcript` or a `PolyasrError`, and
        `listener` its segments as they are final."""
        with self._changed:
            if self._stopped:
                raise ApiError(503, "the server is shutting down", code="shutting_down")
            if len(self._jobs) >= self.max_queue:
                raise QueueFull(self.name, self.max_queue)
            job = Job(audio, options, listener)
            self._jobs.append(job)
            self._changed.notify()
        return job.future

    def stop(self) -> None:
        """Finish the batch in progress, fail the waiting requests, end the thread."""
        with self._changed:
            self._stopped = True
            waiting = list(self._jobs)
            self._jobs.clear()
            self._changed.notify()
        for job in waiting:
            job.future.cancel()
        self._thread.join()

    def _next_batch(self) -> list[Job]:
        """The oldest job and the queued jobs with equal options, after the batching wait."""
        with self._changed:
            while not self._jobs and not self._stopped:
                self._changed.wait()
            if self._stopped:
                return []
            deadline = time.monotonic() + self.batch_wait_s
            while len(self._jobs) < self.max_batch and not self._stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            options = self._jobs[0].options
            batch = [job for job in self._jobs if job.options == options][: self.max_batch]
            for job in batch:
                self._jobs.remove(job)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                return
            live = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if live:
                self._decode(live)

    def _decode(self, jobs: list[Job]) -> None:
        self.busy = len(jobs)
        started = time.perf_counter()
        try:
            audios, options = [j.audio for j in jobs], jobs[0].options
            if any(j.listener for j in jobs):
                results = self.model.transcribe_batch(
                    audios, options, on_segments=partial(_pass_on, jobs)
                )
            else:
                results = self.model.transcribe_batch(audios, options)
        except PolyasrError as exc:
            results = [exc] * len(jobs)
        except Exception as exc:  # a bug must fail these requests, not the worker
            log.exception("model %s failed on a batch of %d", self.name, len(jobs))
            results = [exc] * len(jobs)
        finally:
            self.busy = 0
        self.batches += 1
        log.debug(
            "model %s: batch of %d in %.0f ms",
            self.name,
            len(jobs),
            (time.perf_counter() - started) * 1000,
        )
        for job, result in zip(jobs, results):
            if isinstance(result, Transcript):
                job.future.set_result(result)
            else:
                job.future.set_exception(result)


def _pass_on(jobs: list[Job], index: int, segments: list[Segment]) -> None:
    listener = jobs[index].listener
    if listener is not None:
        listener(segments)
