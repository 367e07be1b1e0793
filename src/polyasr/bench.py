"""`polyasr bench`: what a model costs on this machine, measured the way a user meets it.

Each model runs in a fresh process of its own, so that its cold start (process start to first
text: interpreter, imports, loading, first transcription), load time and peak resident memory
are its own. Later rounds in the same process give the warm real-time factor. The reported
RTF is the median of the warm rounds (the cold round when there is only one)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import PolyasrError

RESULT = "POLYASR_BENCH "


@dataclass
class BenchResult:
    """One model's figures on one recording."""

    model: str
    family: str
    audio_s: float
    cold_start_s: float
    """Process start to the first transcript, everything included."""
    import_s: float
    load_s: float
    rtf: float
    """Transcription seconds per audio second (median of the warm rounds)."""
    rounds: int
    peak_rss_mb: float
    text_tokens: int | None
    """Tokens of the transcript in the model's own tokenizer (decoder families)."""
    tokens_per_s: float | None
    wer: float | None
    text: str

    @property
    def speed(self) -> float:
        """Times faster than real time."""
        return 1 / self.rtf if self.rtf > 0 else float("inf")


def bench(
    audio: str | Path,
    model: str,
    *,
    rounds: int = 2,
    reference: str | None = None,
    options: dict[str, Any] | None = None,
    device: str = "auto",
    dtype: str | None = None,
) -> BenchResult:
    """Measure `model` on the recording `audio` in a process of its own (see the module)."""
    request = {
        "audio": str(audio),
        "model": str(model),
        "rounds": max(1, rounds),
        "options": options or {},
        "device": device,
        "dtype": dtype,
        "launched": time.time(),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "polyasr.bench", json.dumps(request)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if not lines:
        last = (proc.stderr.strip().splitlines() or ["the benchmark process failed"])[-1]
        raise PolyasrError(f"{model}: {last.removeprefix('error: ')}")
    data = json.loads(lines[-1][len(RESULT) :])
    if "error" in data:
        raise PolyasrError(f"{model}: {data['error']}")
    data["wer"] = None
    if reference is not None:
        from .metrics import wer

        data["wer"] = wer(reference, data["text"])
    return BenchResult(**data)


def _tokens(recognizer: Any, text: str) -> int | None:
    """Tokens of `text` in the family's tokenizer, for families that decode tokens one by one
    with a tokenizer of their own (Whisper, Qwen3-ASR); None for the others."""
    encode = getattr(getattr(recognizer, "tokenizer", None), "encode", None)
    return len(encode(text)) if callable(encode) and text else None


def _measure(request: dict[str, Any]) -> dict[str, Any]:
    """The child's side: import, load, transcribe `rounds` times, report."""
    import resource

    started = time.time()
    import polyasr
    from polyasr.audio import load_audio

    imported = time.time()
    model = polyasr.load(request["model"], device=request["device"], dtype=request["dtype"])
    loaded = time.time()
    audio = load_audio(request["audio"])
    seconds: list[float] = []
    first_text = 0.0
    for _ in range(request["rounds"]):
        t = time.perf_counter()
        transcript = model.transcribe(audio, **request["options"])
        seconds.append(time.perf_counter() - t)
        first_text = first_text or time.time()
    warm = seconds[1:] or seconds
    call_s = statistics.median(warm)
    tokens = _tokens(model.recognizer, transcript.text)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "model": model.name,
        "family": model.family,
        "audio_s": audio.duration,
        "cold_start_s": first_text - request["launched"],
        "import_s": imported - started,
        "load_s": loaded - imported,
        "rtf": call_s / max(audio.duration, 1e-9),
        "rounds": len(seconds),
        "peak_rss_mb": peak_kb / 1024,
        "text_tokens": tokens,
        "tokens_per_s": tokens / call_s if tokens else None,
        "text": transcript.text,
    }


def table_rows(results: list[BenchResult]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the table `polyasr bench` prints."""
    header = ["model", "family", "RTF", "x real time", "cold start s", "load s", "import s"]
    header += ["peak RSS MB", "tokens/s", "WER %"]
    rows = []
    for r in results:
        rows.append(
            [
                r.model,
                r.family,
                f"{r.rtf:.3f}",
                f"{r.speed:.1f}",
                f"{r.cold_start_s:.2f}",
                f"{r.load_s:.2f}",
                f"{r.import_s:.2f}",
                f"{r.peak_rss_mb:.0f}",
                "-" if r.tokens_per_s is None else f"{r.tokens_per_s:.1f}",
                "-" if r.wer is None else f"{100 * r.wer:.2f}",
            ]
        )
    return header, rows


def as_json(results: list[BenchResult]) -> str:
    return json.dumps([{**asdict(r), "speed": r.speed} for r in results], indent=2) + "\n"


def main() -> None:
    """Child process entry: one JSON request in argv, one result line on stdout."""
    request = json.loads(sys.argv[1])
    try:
        result = _measure(request)
    except PolyasrError as exc:
        result = {"error": str(exc)}
    print(RESULT + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
