"""Parakeet TDT 0.6B on CPU: polyasr against NeMo 3.0.0, same `.nemo` file, same 60 s of audio.

A real-size random-weight Parakeet TDT (the v3 config: 24 FastConformer layers of d 1024, 2-layer
LSTM of 640, joint 640, 8192 + 1 tokens, durations 0-4, the real v3 tokenizer) is built once with
NeMo's own classes in the reference venv and saved with `save_to`. Its blank bias is set so that
greedy decoding emits about TOKENS_PER_S tokens per second, as a real model does on speech. Every
engine then loads that very archive in a fresh process and transcribes the same audio once
(cold, no warm-up). Run from the repository root:

    .venv/bin/python benchmarks/parakeet_cpu.py [--repeat 3] [--threads 2]

The reference venv is the one of tests/golden/make_parakeet.py (.ref-venv-nemo).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from benchlib import (
    REPO_ROOT,
    SHARED,
    Machine,
    benchmark_parser,
    concatenated_speech,
    flop_replay,
    measure_once,
    median_run,
    record_calls,
    spawn_worker,
    table,
    time_calls,
)

REF_VENV = REPO_ROOT / ".ref-venv-nemo"
DURATION_S = 60.0
ENGINES = ("polyasr", "polyasr-vad", "polyasr-bf16", "nemo")
REAL_DIMS = {
    "d_model": 1024,
    "n_layers": 24,
    "n_heads": 8,
    "channels": 256,
    "pred": 640,
    "joint": 640,
}
BUILD_VERSION = 1
TOKENS_PER_S = 4.0  # about what the real v3 emits on read speech (8192-piece BPE)
ARCHIVE_NAME = "parakeet-tdt-0.6b-v3-random.nemo"


@dataclass
class Result:
    """What one worker measured; times are seconds since the parent launched it."""

    engine: str
    load_s: float = 0.0  # process start -> model ready (imports included)
    cold_s: float = 0.0  # process start -> first text available
    transcribe_s: float = 0.0  # wall time of the one transcription call
    transcribe_cpu_s: float = 0.0
    encode_s: float = 0.0  # part of transcribe_s spent in log-mel + encoder
    encode_flops: float = 0.0  # FLOPs of the encoder (polyasr rows; counted after the timing)
    peak_rss_mb: float = 0.0
    other_cpu_s: float = 0.0  # CPU used by other processes meanwhile (set by the parent)
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    error: str = ""


Transcribe = Callable[[], tuple[str, list[int], float]]  # -> text, token ids, encoder seconds


def run_polyasr(
    archive: Path, audio: Path, threads: int, vad: bool, dtype: str = "float32"
) -> Transcribe:
    import torch

    import polyasr

    torch.set_num_threads(threads)
    model = polyasr.load(str(archive), device="cpu", dtype=dtype)
    count_flops = flop_replay(model.recognizer, "encode")
    encode_s = time_calls(model.recognizer, "encode")
    recognized = record_calls(model.recognizer, "recognize")

    def transcribe() -> tuple[str, list[int], float]:
        text = model.transcribe(np.load(audio), vad=vad).text
        tokens = [span.id for batch in recognized for spans in batch for span in spans]
        return text, tokens, encode_s[0]

    transcribe.count_flops = count_flops
    return transcribe


def run_nemo(archive: Path, audio: Path, threads: int, vad: bool) -> Transcribe:
    import torch
    from nemo.collections.asr.models import ASRModel

    torch.set_num_threads(threads)
    model = ASRModel.restore_from(str(archive), map_location="cpu").eval()
    encode_s = [0.0]
    started = [0.0]

    def before(*_):
        started[0] = time.perf_counter()

    def after(*_):
        encode_s[0] += time.perf_counter() - started[0]

    model.preprocessor.register_forward_pre_hook(before)
    model.encoder.register_forward_hook(after)

    def transcribe() -> tuple[str, list[int], float]:
        hyp = model.transcribe(
            [np.load(audio)], batch_size=1, return_hypotheses=True, verbose=False
        )
        hyp = hyp[0][0] if isinstance(hyp, tuple) else hyp[0]
        return hyp.text, [int(k) for k in hyp.y_sequence], encode_s[0]

    return transcribe


RUNNERS = {
    "polyasr": (run_polyasr, False),
    "polyasr-vad": (run_polyasr, True),
    "polyasr-bf16": (partial(run_polyasr, dtype="bfloat16"), False),
    "nemo": (run_nemo, False),
}


def worker(args: argparse.Namespace) -> None:
    """Load one engine, transcribe once, print one JSON line."""
    run, vad = RUNNERS[args.worker]
    archive = args.cache_dir / ARCHIVE_NAME
    result = Result(engine=args.worker)
    measure_once(result, args.launched_at, lambda: run(archive, args.audio, args.threads, vad))


def build(cache: Path, audio: Path, audio_sha: str) -> None:
    """Build the real-size random model with NeMo, set its blank bias, save the archive."""
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    sys.path.insert(0, str(REPO_ROOT / "tests" / "golden"))
    import make_parakeet

    torch.set_num_threads(2)
    torch.manual_seed(make_parakeet.SEED)
    samples = np.load(audio)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_parakeet.config(make_parakeet.tokenizer_dir(Path(tmp)), REAL_DIMS)
        model = EncDecRNNTBPEModel(cfg=OmegaConf.create(cfg))
        make_parakeet.randomize(model)
        model.eval()
        with torch.inference_mode():
            make_parakeet.calibrate_joint(model, samples)
            signal, length = torch.from_numpy(samples)[None], torch.tensor([len(samples)])
            feats, feat_len = model.preprocessor(input_signal=signal, length=length)
            encoded, enc_len = model.encoder(audio_signal=feats, length=feat_len)

            def count() -> int:
                hyps = model.decoding.rnnt_decoder_predictions_tensor(
                    encoder_output=encoded, encoded_lengths=enc_len, return_hypotheses=True
                )
                return len(hyps[0].y_sequence)

            bias = model.joint.joint_net[2].bias
            blank = model.tokenizer.vocab_size
            target, low, high = int(TOKENS_PER_S * DURATION_S), -20.0, 20.0
            for _ in range(14):  # more blank bias -> fewer tokens
                bias[blank] = (low + high) / 2
                low, high = (
                    (float(bias[blank]), high) if count() > target else (low, float(bias[blank]))
                )
            tokens = count()
        cache.mkdir(parents=True, exist_ok=True)
        model.save_to(str(cache / ARCHIVE_NAME))
    info = {
        "version": BUILD_VERSION,
        "audio_sha": audio_sha,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokens": tokens,
        "blank_bias": float(bias[blank]),
    }
    (cache / "build.json").write_text(json.dumps(info, indent=1) + "\n")


def ensure_archive(args: argparse.Namespace, audio: Path, audio_sha: str) -> dict:
    info_path = args.cache_dir / "build.json"
    if info_path.exists() and not args.rebuild and (args.cache_dir / ARCHIVE_NAME).exists():
        info = json.loads(info_path.read_text())
        if info["version"] == BUILD_VERSION and info["audio_sha"] == audio_sha:
            return info
    print("building the real-size archive (once, a few minutes) ...", file=sys.stderr, flush=True)
    cmd = [str(args.ref_python), __file__, "--build", "--audio", str(audio)]
    cmd += ["--cache-dir", str(args.cache_dir), "--audio-sha", audio_sha]
    subprocess.run(cmd, env=worker_env(args), check=True)
    return json.loads(info_path.read_text())


def worker_env(args: argparse.Namespace) -> dict[str, str]:
    threads = str(args.threads)
    # Every round loads the published file as a first use does (no checkpoint cache copy).
    cache = {"POLYASR_CHECKPOINT_CACHE": "off"}
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, **cache}


def run_worker(engine: str, args: argparse.Namespace, audio: Path) -> Result:
    python = args.ref_python if engine == "nemo" else Path(sys.executable)
    flags = {"--audio": audio, "--threads": args.threads, "--cache-dir": args.cache_dir}
    flags["--launched-at"] = time.time()
    cmd = [str(python), __file__, "--worker", engine, *map(str, sum(flags.items(), ()))]
    data, error, other_cpu_s = spawn_worker(cmd, worker_env(args))
    result = Result(**data) if data else Result(engine=engine, error=error)
    result.other_cpu_s = other_cpu_s
    return result


HEADER = ["engine", "RTF", "RTF range", "vs polyasr", "CPU s", "enc s", "enc GEMM", "decode s"]
HEADER += ["load s", "cold s", "peak MB", "tokens", "same tokens", "other CPU s"]


def print_table(
    runs: dict[str, list[Result]],
    info: dict,
    machine: Machine,
) -> None:
    rows, errors = [HEADER], []
    base = median_run(runs["polyasr"]) if "polyasr" in runs else None
    sequences = {
        tuple(r.tokens) for e in ("polyasr", "nemo") for r in runs.get(e, []) if not r.error
    }
    for engine, engine_runs in runs.items():
        r = median_run(engine_runs)
        if r.error:
            errors.append(f"{engine}: {r.error}")
            continue
        rtfs = [x.transcribe_s / DURATION_S for x in engine_runs if not x.error]
        ratio = f"{r.transcribe_s / base.transcribe_s:.2f}x" if base and not base.error else "-"
        same = "-" if engine not in ("polyasr", "nemo") else "yes" if len(sequences) == 1 else "NO"
        rows.append(
            [
                engine,
                f"{r.transcribe_s / DURATION_S:.3f}",
                f"{min(rtfs):.3f}-{max(rtfs):.3f}",
                ratio,
                f"{r.transcribe_cpu_s:.1f}",
                f"{r.encode_s:.2f}",
                machine.gemm_share(base.encode_flops if base else 0.0, r.encode_s),
                f"{r.transcribe_s - r.encode_s:.2f}",
                f"{r.load_s:.2f}",
                f"{r.cold_s:.2f}",
                f"{r.peak_rss_mb:.0f}",
                str(len(r.tokens)),
                same,
                f"{r.other_cpu_s:.1f}",
            ]
        )
    repeats = max(len(r) for r in runs.values())
    print(
        f"\nParakeet TDT 0.6B (real size, random weights, {info['parameters'] / 1e6:.1f} M "
        f"parameters) on CPU, fp32 (polyasr-bf16: bfloat16), {machine.threads} threads, "
        f"{DURATION_S:.0f} s of speech, {info['tokens']} tokens; {repeats} round(s), a fresh "
        "process per engine and round, one "
        f"cold call each; rows are medians; load average before: {machine.load_avg:.2f}.\n"
    )
    print(table(rows[0], rows[1:], left=1))
    print(*errors, sep="\n")
    print(machine.line())
    for engine, engine_runs in runs.items():
        cells = [
            f"RTF {r.transcribe_s / DURATION_S:.3f} (other CPU {r.other_cpu_s:.1f} s)"
            for r in engine_runs
            if not r.error
        ]
        print(f"{engine} rounds: " + ", ".join(cells))
    if base is not None and not base.error:
        share = 100 * (base.transcribe_s - base.encode_s) / base.transcribe_s
        print(f"polyasr: TDT decoding and the rest take {share:.0f} % of the call")
    print(
        "\nvs polyasr = engine time / polyasr time (>1: polyasr is faster). enc s = log-mel + "
        "encoder; enc GEMM = the encoder's FLOPs (torch's FLOP counter in the polyasr worker, "
        "after its timed call) per enc s, as a share of the GEMM ceiling; decode s = the rest "
        "of the call (TDT greedy decoding, text; VAD for polyasr-vad). same tokens = polyasr "
        "(one 60 s window) and NeMo emitted identical ids in every round. other CPU s well "
        "above 0 means another process disturbed the row. polyasr-bf16 computes in bfloat16 (its "
        "enc GEMM is a share of the fp32 ceiling): fast where the CPU multiplies bfloat16 "
        "natively (AMX, AVX512-BF16), slow elsewhere; random weights' tiny argmax margins make "
        "its ids differ, so they are not compared."
    )


def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], ENGINES, REF_VENV)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.build:
        return build(args.cache_dir, args.audio, args.audio_sha)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if set(engines) - set(ENGINES):
        parser.error(f"unknown engines: {', '.join(sorted(set(engines) - set(ENGINES)))}")
    prefixes = ("en/librispeech", "en/librivox", "en/mfa", "other/")
    samples = concatenated_speech(SHARED, DURATION_S, prefixes)
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "bench.npy"
        np.save(audio, samples)
        info = ensure_archive(args, audio, hashlib.sha256(samples).hexdigest())
        machine = Machine.measure(args.threads)
        runs: dict[str, list[Result]] = {e: [] for e in engines}
        for round_ in range(args.repeat):
            for engine in engines[round_ % len(engines) :] + engines[: round_ % len(engines)]:
                print(f"round {round_ + 1}: {engine} ...", file=sys.stderr, flush=True)
                runs[engine].append(run_worker(engine, args, audio))
    print_table(runs, info, machine)
    if args.print_text:
        for engine, engine_runs in runs.items():
            print(f"\n[{engine}] {median_run(engine_runs).text}")


if __name__ == "__main__":
    main()
