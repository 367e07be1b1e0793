"""Qwen3-ASR 0.6B on CPU: polyasr against the official qwen-asr package, same weights, same audio.

A real-size Qwen3-ASR-0.6B with random weights (the real config, shared/docs/models/qwen3-asr.md
section 3) is built once with the official classes in the reference venv and saved in the hub
layout (bf16 safetensors with the stored lm_head, the fixture's real-format tokenizer); every
engine then loads that directory in its own subprocess and transcribes the same 60 s of speech,
generating the same number of tokens. Run from the repository root:

    .venv/bin/python benchmarks/qwen3asr_cpu.py [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from benchlib import (
    REPO_ROOT,
    Machine,
    benchmark_parser,
    flop_replay,
    measure_once,
    median_run,
    spawn_worker,
    table,
)
from gigaam_cpu import DURATION_S, SAMPLE_RATE, default_audio

REF_VENV = REPO_ROOT / ".ref-venv-qwen"
GOLDEN = REPO_ROOT / "tests" / "golden"
ENGINES = ("polyasr", "polyasr-1piece", "official")
TOKENS = 150  # 2.5 text tokens per second of audio, a realistic rate
WINDOW_S = 30.0  # polyasr's pieces with vad=False: 2 x 30 s, decoded as one batch
BUILD_VERSION = 1
SEED = 606
TOKENIZER_FILES = (
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "chat_template.json",
    "preprocessor_config.json",
    "generation_config.json",
)

# Qwen3-ASR-0.6B (shared/docs/models/qwen3-asr.md, section 3).
AUDIO_CONFIG = dict(
    num_mel_bins=128,
    encoder_layers=18,
    encoder_attention_heads=14,
    encoder_ffn_dim=3584,
    d_model=896,
    output_dim=1024,
    n_window=50,
    n_window_infer=800,
    downsample_hidden_size=480,
    max_source_positions=1500,
    conv_chunksize=500,
)
TEXT_CONFIG = dict(
    vocab_size=151936,
    hidden_size=1024,
    intermediate_size=3072,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=65536,
    rms_norm_eps=1e-6,
    rope_theta=1_000_000.0,
    rope_scaling={"rope_type": "default", "mrope_section": [24, 20, 20], "interleaved": True},
    tie_word_embeddings=True,
)


@dataclass
class Result:
    """What one worker measured; times are seconds since the parent launched it."""

    engine: str
    load_s: float = 0.0  # process start -> model ready
    cold_s: float = 0.0  # process start -> first text available
    transcribe_s: float = 0.0  # wall time of the one transcription call
    transcribe_cpu_s: float = 0.0  # CPU time (all threads) of that call
    encode_s: float = 0.0  # log-mel + audio encoder
    prefill_s: float = 0.0  # decoder over the prompts
    decode_s: float = 0.0  # the generation steps after the prefill
    steps: int = 0  # decoding steps after the prefill (one per token of each row)
    encode_flops: float = 0.0  # FLOPs of the audio encoder (polyasr rows; counted after timing)
    peak_rss_mb: float = 0.0
    other_cpu_s: float = 0.0  # CPU used by other processes meanwhile (set by the parent)
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    error: str = ""


class Timer:
    """Replaces `owner.name` (a method of an object or of a class) by a wrapper that adds up
    the wall time and the number of its calls; `first` = the first call."""

    def __init__(self, owner: object, name: str) -> None:
        self.total, self.first, self.calls = 0.0, 0.0, 0
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                self.total += spent
                self.first = self.first or spent
                self.calls += 1

        setattr(owner, name, timed)


# --- engines (each runs inside its worker process; heavy imports stay local) ---------------

Transcribe = Callable[[Result], str]


def run_polyasr(model_dir: Path, audio: Path, threads: int, one_piece: bool) -> Transcribe:
    """polyasr fp32: the default API with vad=False (two 30 s windows in one batch, 75 tokens
    each), or the whole minute as one prompt with full encoder attention as the package runs
    it (150 tokens: the same computation, so the same ids are expected)."""
    import torch

    import polyasr
    from polyasr.models.qwen3asr import decoding

    torch.set_num_threads(threads)
    transcriber = polyasr.load(model_dir, device="cpu", dtype="float32")
    model = transcriber.recognizer
    model.generation = decoding.GenerationConfig(stop_ids=(), loop_span=None)  # exact counts
    count_flops = flop_replay(model, "encode")
    encode = Timer(model, "encode")
    prefill = Timer(decoding.IncrementalDecoder, "prefill")
    step = Timer(decoding.IncrementalDecoder, "step")
    recognized = []
    recognize = model.recognize

    def recording_recognize(*args, **kwargs):
        out = recognize(*args, **kwargs)
        recognized.extend(out)
        return out

    model.recognize = recording_recognize
    if one_piece:
        model.attention = "full"

    def transcribe(result: Result) -> str:
        samples = np.load(audio)
        if one_piece:
            text = model.recognize([samples], max_new_tokens=TOKENS)[0].text
        else:
            per_window = round(TOKENS * WINDOW_S / DURATION_S)
            text = transcriber.transcribe(samples, vad=False, max_new_tokens=per_window).text
        result.encode_s, result.prefill_s, result.decode_s = encode.total, prefill.total, step.total
        result.steps = step.calls
        result.tokens = [t for r in recognized for t in r.tokens]
        return text

    transcribe.count_flops = count_flops
    return transcribe


def run_official(model_dir: Path, audio: Path, threads: int, one_piece: bool) -> Transcribe:
    """qwen-asr 0.0.6 transformers backend, fp32, default attention (sdpa), `transcribe()` on
    the (samples, 16000) tuple; `min_new_tokens` keeps it generating exactly TOKENS."""
    import torch
    from qwen_asr import Qwen3ASRModel

    torch.set_num_threads(threads)
    asr = Qwen3ASRModel.from_pretrained(str(model_dir), dtype=torch.float32, max_new_tokens=TOKENS)
    thinker = asr.model.thinker
    encode = Timer(thinker, "get_audio_features")
    forward = Timer(thinker, "forward")  # the first call: encoder + prefill
    generate = asr.model.generate
    generated: list[list[int]] = []

    def fixed_length_generate(**kwargs):
        out = generate(**kwargs, min_new_tokens=TOKENS)
        prompt = kwargs["input_ids"].shape[1]
        generated.extend(out.sequences[:, prompt:].tolist())
        return out

    asr.model.generate = fixed_length_generate

    def transcribe(result: Result) -> str:
        text = asr.transcribe(audio=(np.load(audio), SAMPLE_RATE))[0].text
        result.encode_s, result.prefill_s = encode.total, forward.first - encode.total
        result.decode_s, result.steps = forward.total - forward.first, forward.calls - 1
        result.tokens = [t for row in generated for t in row]
        return text

    return transcribe


ENGINE_RUNNERS: dict[str, tuple[Callable[[Path, Path, int, bool], Transcribe], bool]] = {
    "polyasr": (run_polyasr, False),
    "polyasr-1piece": (run_polyasr, True),
    "official": (run_official, True),
}


def worker(args: argparse.Namespace) -> None:
    """Load one engine, transcribe once, print one JSON line."""
    result = Result(engine=args.worker)
    run, one_piece = ENGINE_RUNNERS[args.worker]

    def prepare():
        transcribe = run(args.cache_dir / "model", args.audio, args.threads, one_piece)

        def call() -> tuple[str, list[int], float]:
            text = transcribe(result)  # also fills the per-phase times and the token ids
            return text, result.tokens, result.encode_s

        call.count_flops = getattr(transcribe, "count_flops", None)
        return call

    measure_once(result, args.launched_at, prepare)


# --- model build (reference venv) -----------------------------------------------------------


def build(cache: Path) -> None:
    """Random real-size 0.6B with the official classes, saved in the hub layout (bf16)."""
    import torch
    from qwen_asr.core.transformers_backend import Qwen3ASRConfig, Qwen3ASRForConditionalGeneration
    from safetensors.torch import save_file

    sys.path.insert(0, str(GOLDEN))
    import make_qwen3asr

    target = cache / "model"
    shutil.rmtree(target, ignore_errors=True)
    config = Qwen3ASRConfig(
        thinker_config=dict(
            audio_config=AUDIO_CONFIG,
            text_config=TEXT_CONFIG,
            audio_token_id=151676,
            audio_start_token_id=151669,
            audio_end_token_id=151670,
            user_token_id=872,
            dtype="bfloat16",
        ),
        support_languages=make_qwen3asr.LANGUAGES,
    )
    torch.manual_seed(SEED)
    model = Qwen3ASRForConditionalGeneration(config).to(torch.bfloat16).eval()
    model.save_pretrained(str(target), safe_serialization=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["thinker.lm_head.weight"] = state["thinker.model.embed_tokens.weight"].clone()
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    parameters = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        tiny = make_qwen3asr.materialize(make_qwen3asr.FIXTURE, Path(tmp))
        for name in TOKENIZER_FILES:
            shutil.copyfile(tiny / name, target / name)
    info = {"version": BUILD_VERSION, "parameters": parameters}
    (cache / "build.json").write_text(json.dumps(info, indent=1) + "\n")


def ensure_model(args: argparse.Namespace) -> dict:
    info_path = args.cache_dir / "build.json"
    if info_path.exists() and not args.rebuild:
        info = json.loads(info_path.read_text())
        if info["version"] == BUILD_VERSION and (args.cache_dir / "model").is_dir():
            return info
    print("building the real-size model (once) ...", file=sys.stderr, flush=True)
    cmd = [str(args.ref_python), __file__, "--build", "--cache-dir", str(args.cache_dir)]
    subprocess.run(cmd, env=worker_env(args), check=True)
    return json.loads(info_path.read_text())


# --- parent: audio, subprocesses, table -----------------------------------------------------


def worker_env(args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
    }


def run_worker(engine: str, args: argparse.Namespace, audio: Path) -> Result:
    python = args.ref_python if engine == "official" else Path(sys.executable)
    flags = {"--audio": audio, "--threads": args.threads, "--cache-dir": args.cache_dir}
    flags["--launched-at"] = time.time()
    cmd = [str(python), __file__, "--worker", engine, *map(str, sum(flags.items(), ()))]
    data, error, other_cpu_s = spawn_worker(cmd, worker_env(args))
    result = Result(**data) if data else Result(engine=engine, error=error)
    result.other_cpu_s = other_cpu_s
    return result


HEADER = ["engine", "RTF", "RTF range", "vs polyasr", "CPU s", "enc s", "enc GEMM", "prefill s"]
HEADER += ["decode s", "steps", "step ms", "vs floor", "tokens", "tok/s", "dec tok/s", "load s"]
HEADER += ["cold s", "peak MB", "same ids", "other CPU s"]


def step_bytes() -> int:
    """Bytes of float32 weights one decoding step reads: every decoder layer's matrices and
    the (tied) output projection; the embedding lookup reads a row."""
    t = TEXT_CONFIG
    hidden, head_dim = t["hidden_size"], t["head_dim"]
    attention = 2 * hidden * t["num_attention_heads"] * head_dim
    attention += 2 * hidden * t["num_key_value_heads"] * head_dim
    layer = attention + 3 * hidden * t["intermediate_size"]
    return 4 * (t["num_hidden_layers"] * layer + t["vocab_size"] * hidden)


def same_ids(runs: dict[str, list[Result]], engine: str) -> str:
    """Whether polyasr-1piece and official generated identical ids in every round."""
    both = [runs.get(e, []) for e in ("polyasr-1piece", "official")]
    if engine == "polyasr" or not all(both):
        return "-"
    sequences = {tuple(r.tokens) for rs in both for r in rs if not r.error}
    return "-" if not sequences else "yes" if len(sequences) == 1 else "NO"


def print_table(
    runs: dict[str, list[Result]],
    info: dict,
    machine: Machine,
) -> None:
    rows = [HEADER]
    errors = []
    base = median_run(runs["polyasr"]) if "polyasr" in runs else None
    floor_s = machine.floor_s(step_bytes())
    flops = {e: median_run(rs).encode_flops for e, rs in runs.items()}
    one_piece_flops = flops.get("polyasr-1piece", 0.0)  # the official encoder's computation
    for engine, engine_runs in runs.items():
        r = median_run(engine_runs)
        if r.error:
            errors.append(f"{engine}: {r.error}")
            continue
        rtfs = [x.transcribe_s / DURATION_S for x in engine_runs if not x.error]
        ratio = f"{r.transcribe_s / base.transcribe_s:.2f}x" if base and not base.error else "-"
        step_s = r.decode_s / r.steps if r.steps else 0.0
        rows.append(
            [
                engine,
                f"{r.transcribe_s / DURATION_S:.3f}",
                f"{min(rtfs):.3f}-{max(rtfs):.3f}",
                ratio,
                f"{r.transcribe_cpu_s:.1f}",
                f"{r.encode_s:.2f}",
                machine.gemm_share(
                    one_piece_flops if engine == "official" else r.encode_flops, r.encode_s
                ),
                f"{r.prefill_s:.2f}",
                f"{r.decode_s:.2f}",
                str(r.steps),
                f"{1e3 * step_s:.0f}" if step_s else "-",
                f"{step_s / floor_s:.2f}x" if step_s else "-",
                str(len(r.tokens)),
                f"{len(r.tokens) / r.transcribe_s:.2f}",
                f"{len(r.tokens) / r.decode_s:.2f}" if r.decode_s else "-",
                f"{r.load_s:.2f}",
                f"{r.cold_s:.2f}",
                f"{r.peak_rss_mb:.0f}",
                same_ids(runs, engine),
                f"{r.other_cpu_s:.1f}",
            ]
        )
    repeats = max(len(r) for r in runs.values())
    print(
        f"\nQwen3-ASR-0.6B (real size, random weights, {info['parameters'] / 1e6:.1f} M "
        f"parameters) on CPU, fp32, {machine.threads} threads, {DURATION_S:.0f} s of speech, "
        f"{TOKENS} generated tokens per engine; {repeats} round(s), each engine in a fresh "
        "process per round with one cold call (no warm-up); each row is the engine's median run, "
        f"RTF range over all rounds; load average before the run: {machine.load_avg:.2f}.\n"
    )
    print(table(rows[0], rows[1:], left=1))
    print(*errors, sep="\n")
    print(machine.line())
    print(
        f"weight-reading floor of one decoding step: {step_bytes() / 1e9:.2f} GB of float32 "
        f"decoder weights at {machine.memory_gbps:.1f} GB/s = {1e3 * floor_s:.0f} ms"
    )
    print(
        "\nvs polyasr = engine RTF / polyasr RTF (>1 means polyasr is faster). polyasr: the "
        "default API with vad=False, two 30 s windows decoded as one batch (75 tokens each, "
        "windowed encoder attention); polyasr-1piece: the minute as one prompt with full "
        "encoder attention, exactly the package's computation; official: qwen-asr "
        "transcribe(). enc s = log-mel + audio encoder; prefill s = the decoder over the "
        "prompt (official: its first forward minus the encoder); decode s = the generation "
        "steps; step ms = decode s / steps (one step decodes every row of the batch); vs "
        "floor = step ms / the weight-reading floor; enc GEMM = encoder FLOPs (torch's FLOP "
        "counter in the polyasr workers, after the timed call; official: polyasr-1piece's, the "
        "same computation) per enc s as a share of the GEMM ceiling; dec tok/s = tokens / "
        "decode s. same ids = polyasr-1piece and official "
        "generated identical ids in every round. other CPU s = CPU time other processes used "
        "while the worker ran: well above 0 means the row was slowed."
    )


def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], ENGINES, REF_VENV)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.build:
        return build(args.cache_dir)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    info = ensure_model(args)
    samples = default_audio()
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "bench.npy"  # every engine reads these same float32 samples
        np.save(audio, samples)
        print(f"audio sha256 {hashlib.sha256(samples).hexdigest()[:12]}", file=sys.stderr)
        machine = Machine.measure(args.threads)
        runs: dict[str, list[Result]] = {engine: [] for engine in engines}
        for round_ in range(args.repeat):
            for engine in engines[round_ % len(engines) :] + engines[: round_ % len(engines)]:
                print(f"round {round_ + 1}: {engine} ...", file=sys.stderr, flush=True)
                runs[engine].append(run_worker(engine, args, audio))
    print_table(runs, info, machine)
    if args.print_text:
        for r in map(median_run, runs.values()):
            print(f"\n[{r.engine}] {r.text[:300]}")


if __name__ == "__main__":
    main()
