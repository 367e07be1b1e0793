"""Load test of `polyasr serve`: many concurrent uploads of real recordings through the real
`openai` client, with malformed, oversize and abandoned uploads mixed in.

Starts `polyasr serve` (whisper-base from the shared folder by default, greedy) on a free
127.0.0.1 port, transcribes each recording once alone for its reference text, then sends
`--requests` uploads at once and checks that every answer arrives and equals its reference.
Meanwhile bad clients send malformed multipart bodies, uploads over the size limit and uploads
they abandon halfway; the server must answer them with 4xx (or see them leave) and stay up.
Prints a table: requests, errors, mismatches, p50 / p95 / max latency, throughput.

    python benchmarks/server_load.py [--requests 120] [--model DIR] [--beam-size 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
LIMIT_MB = 8


def recordings(max_seconds: float) -> list[tuple[str, bytes, float]]:
    """(name, bytes, seconds) of the English ASR recordings in the shared manifest."""
    rows = [json.loads(line) for line in (SHARED / "data" / "manifest.jsonl").open()]
    chosen = [
        r
        for r in rows
        if r.get("task") == "asr" and r["language"] == "en" and r["duration_s"] <= max_seconds
    ]
    return [
        (r["path"], (SHARED / "data" / r["path"]).read_bytes(), r["duration_s"]) for r in chosen
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, port: int, beam_size: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "polyasr.cli", "serve", "--model", f"whisper-base={model}"]
    command += ["--port", str(port), "--beam-size", str(beam_size)]
    command += ["--max-upload-mb", str(LIMIT_MB), "--device", "cpu"]
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start")


async def upload(client: openai.AsyncOpenAI, name: str, audio: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    result = await client.audio.transcriptions.create(
        model="whisper-base", file=(Path(name).name, audio), language="en"
    )
    return time.perf_counter() - started, result.text


async def abandoned(port: int, audio: bytes) -> str:
    """Half an upload, then the connection is closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {len(audio) + 200}\r\n\r\n--x\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.flac"\r\n\r\n'
    )
    writer.write(head.encode() + audio[: len(audio) // 2])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    return "abandoned"


async def bad_clients(url: str, port: int, audio: bytes) -> list[str]:
    """Malformed, oversize and abandoned uploads; each returns its status or what happened."""
    async with httpx.AsyncClient(timeout=1800) as http:
        route = f"{url}/v1/audio/transcriptions"
        malformed = http.post(
            route,
            content=b"--x\r\ngarbage",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        oversize = http.post(
            route,
            data={"model": "whisper-base"},
            files={"file": ("big.wav", os.urandom((LIMIT_MB << 20) + 1))},
        )
        corrupt = http.post(
            route, data={"model": "whisper-base"}, files={"file": ("bad.mp3", audio[::-1])}
        )
        answers = await asyncio.gather(
            malformed,
            oversize,
            corrupt,
            *(abandoned(port, audio) for _ in range(5)),
            return_exceptions=True,
        )
    return [
        a
        if isinstance(a, str)
        else f"{type(a).__name__}"
        if isinstance(a, Exception)
        else str(a.status_code)
        for a in answers
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def load(url: str, port: int, files, requests: int):
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=1800)
    jobs = [files[i % len(files)] for i in range(requests)]
    started = time.perf_counter()
    results = await asyncio.gather(
        *(upload(client, name, audio) for name, audio, _ in jobs),
        bad_clients(url, port, files[0][1]),
        return_exceptions=True,
    )
    wall = time.perf_counter() - started
    await client.close()
    return jobs, results[:-1], results[-1], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHARED / "models" / "whisper-base"))
    parser.add_argument("--requests", type=int, default=120)
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=12.0)
    args = parser.parse_args()

    files = recordings(args.max_seconds)
    load_before = os.getloadavg()[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "polyasr-server-load.log"
    process = start_server(args.model, port, args.beam_size, log)
    try:
        wait_until_up(url, process)
        single = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reference = {}
        started = time.perf_counter()
        for name, audio, _ in files:
            reference[name] = single.audio.transcriptions.create(
                model="whisper-base", file=(Path(name).name, audio), language="en"
            ).text
        one_by_one = len(files) / (time.perf_counter() - started)
        jobs, results, bad, wall = asyncio.run(load(url, port, files, args.requests))
        alive = httpx.get(f"{url}/health").json()
    finally:
        process.terminate()
        process.wait(timeout=60)

    errors = [r for r in results if isinstance(r, BaseException)]
    answered = [(job, r) for job, r in zip(jobs, results) if not isinstance(r, BaseException)]
    mismatches = [job[0] for job, (_, text) in answered if text != reference[job[0]]]
    latencies = [seconds for _, (seconds, _) in answered]
    audio_seconds = sum(job[2] for job, _ in answered)
    batches = alive["models"]["whisper-base"]["batches"] - len(files)
    print(
        f"{len(files)} recordings ({sum(f[2] for f in files):.0f} s), model {args.model}, "
        f"beam {args.beam_size}, {os.cpu_count()} CPUs, load average before the run "
        f"{load_before:.1f}"
    )
    print(
        "| requests | errors | text ≠ single request | p50 latency | p95 latency | max latency "
        "| throughput | audio throughput | one at a time | batches |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.requests} | {len(errors)} | {len(mismatches)} "
        f"| {statistics.median(latencies):.1f} s | {percentile(latencies, 0.95):.1f} s "
        f"| {max(latencies):.1f} s | {len(answered) / wall:.2f} req/s "
        f"| {audio_seconds / wall:.1f} audio s/s | {one_by_one:.2f} req/s | {batches} |"
    )
    print(
        f"bad clients (malformed, oversize, corrupt, 5 abandoned): {', '.join(bad)}; "
        f"server after the run: {alive['status']}"
    )
    for error in errors[:5]:
        print(f"error: {error!r}")
    for name in sorted(set(mismatches))[:5]:
        print(f"mismatch: {name}")
    if errors or mismatches or alive["status"] != "ok":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
