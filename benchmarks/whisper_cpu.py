"""Whisper on CPU: polyasr against transformers, faster-whisper and openai-whisper.

Every engine transcribes the same audio with the same whisper-base weights in its own
subprocess, so load time, cold start and peak RSS are per engine. Run from the bench venv:

    python benchmarks/whisper_cpu.py [--engines polyasr,polyasr-q8_0,faster-whisper-int8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import wave
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from benchlib import (
    SAMPLE_RATE,
    SHARED,
    Machine,
    emit_result,
    flop_replay,
    median_run,
    spawn_worker,
    table,
    time_calls,
    weight_bytes,
)

MIN_AUDIO_S = 128.0
GAP_S = 1.5


@dataclass
class Result:
    """What one worker measured; times are seconds since the parent launched it."""

    engine: str
    load_s: float = 0.0  # process start -> model ready
    cold_s: float = 0.0  # process start -> first text available
    transcribe_s: float = 0.0  # wall time of the one transcription call
    transcribe_cpu_s: float = 0.0  # CPU time (all threads) of that call
    peak_rss_mb: float = 0.0
    other_cpu_s: float = 0.0  # CPU used by other processes meanwhile (set by the parent)
    text: str = ""
    error: str = ""
    # polyasr rows only: encoder time and FLOPs, decoder steps, their time and weight bytes
    encode_s: float = 0.0
    encode_flops: float = 0.0
    steps: int = 0
    decode_s: float = 0.0
    step_bytes: int = 0


# --- engines (each runs inside its worker process; heavy imports stay local) ---------------


def _polyasr(
    vad: bool, qtype: str = "", dtype: str = "float32"
) -> Callable[[Path, Path, int, Path], Callable[[], str]]:
    """polyasr greedy fp32: sequential 30 s windows like the peers (vad=False), or the default
    pipeline (Silero VAD pieces decoded in batches); with `qtype`, from a GGUF file of that
    type (made once in the cache), its matrices run by the int8 kernels; with `dtype`, in
    that compute type."""

    def run(model_dir: Path, audio: Path, threads: int, cache: Path) -> Callable[[], str]:
        import torch

        import polyasr

        torch.set_num_threads(threads)
        source = gguf_file(model_dir, cache, qtype) if qtype else model_dir
        model = polyasr.load(str(source), device="cpu", dtype=dtype)
        options = polyasr.TranscribeOptions(language="en", beam_size=1, vad=vad)
        whisper = model.recognizer.model
        count_flops = flop_replay(whisper.encoder, "forward")
        encode, decode = (
            time_calls(whisper.encoder, "forward"),
            time_calls(whisper.decoder, "forward"),
        )
        logits = time_calls(whisper.decoder, "logits")
        step_bytes = weight_bytes(
            whisper.decoder, skip=("encoder_attn.k_proj", "encoder_attn.v_proj", "embed_positions")
        )

        def transcribe() -> str:
            return model.transcribe(str(audio), options).text

        def stats() -> dict:
            return {
                "encode_s": encode[0],
                "encode_flops": count_flops(),
                "steps": decode[1],
                "decode_s": decode[0] + logits[0],
                "step_bytes": step_bytes,
            }

        transcribe.stats = stats
        return transcribe

    return run


def run_transformers(model_dir: Path, audio: Path, threads: int, cache: Path) -> Callable[[], str]:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    torch.set_num_threads(threads)
    processor = WhisperProcessor.from_pretrained(model_dir)
    model = WhisperForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()

    def transcribe() -> str:
        samples = read_wav(audio)
        # Long-form (> 30 s) mode: whole file, no truncation, sequential timestamp decoding.
        inputs = processor(
            samples,
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
            truncation=False,
            padding="longest",
            return_attention_mask=True,
        )
        with torch.inference_mode():
            ids = model.generate(
                **inputs,
                language="en",
                task="transcribe",
                return_timestamps=True,
                num_beams=1,
                do_sample=False,
            )
        return processor.batch_decode(ids, skip_special_tokens=True)[0]

    return transcribe


def _faster_whisper(compute_type: str) -> Callable[[Path, Path, int, Path], Callable[[], str]]:
    def run(model_dir: Path, audio: Path, threads: int, cache: Path) -> Callable[[], str]:
        from faster_whisper import WhisperModel

        model = WhisperModel(
            str(ct2_model_dir(model_dir, cache)),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=threads,
        )

        def transcribe() -> str:
            segments, _ = model.transcribe(str(audio), language="en", beam_size=1, vad_filter=False)
            return "".join(segment.text for segment in segments)

        return transcribe

    return run


def run_openai_whisper(
    model_dir: Path, audio: Path, threads: int, cache: Path
) -> Callable[[], str]:
    import torch
    import whisper
    from safetensors.torch import load_file
    from whisper.model import ModelDimensions, Whisper

    torch.set_num_threads(threads)
    config = json.loads((model_dir / "config.json").read_text())
    keys = (  # in ModelDimensions' field order: n_mels, n_audio_* (4), n_vocab, n_text_* (4)
        "num_mel_bins max_source_positions d_model encoder_attention_heads encoder_layers "
        "vocab_size max_target_positions d_model decoder_attention_heads decoder_layers"
    )
    dims = ModelDimensions(*(config[key] for key in keys.split()))
    model = Whisper(dims)
    weights = load_file(model_dir / "model.safetensors")
    model.load_state_dict({openai_name(k): v.float() for k, v in weights.items()})
    heads = json.loads((model_dir / "generation_config.json").read_text())["alignment_heads"]
    mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
    mask[tuple(zip(*heads, strict=True))] = True
    model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    model.eval()

    def transcribe() -> str:
        samples = read_wav(audio)  # given a path, openai-whisper would call the ffmpeg program
        return whisper.transcribe(model, samples, language="en", fp16=False)["text"]

    return transcribe


ENGINES: dict[str, Callable[[Path, Path, int, Path], Callable[[], str]]] = {
    "polyasr": _polyasr(vad=False),
    "polyasr-vad": _polyasr(vad=True),
    "polyasr-q8_0": _polyasr(vad=False, qtype="q8_0"),
    "polyasr-q4_0": _polyasr(vad=False, qtype="q4_0"),
    "polyasr-bf16": _polyasr(vad=False, dtype="bfloat16"),
    "transformers": run_transformers,
    "faster-whisper-fp32": _faster_whisper("float32"),
    "faster-whisper-int8": _faster_whisper("int8"),
    "openai-whisper": run_openai_whisper,
}

_OPENAI_NAMES = [  # applied in order to each Hugging Face key
    ("model.encoder.embed_positions.weight", "encoder.positional_embedding"),
    ("model.decoder.embed_positions.weight", "decoder.positional_embedding"),
    ("model.decoder.embed_tokens", "decoder.token_embedding"),
    ("model.encoder.layer_norm", "encoder.ln_post"),
    ("model.decoder.layer_norm", "decoder.ln"),
    ("model.", ""),
    (".layers.", ".blocks."),
    ("encoder_attn_layer_norm", "cross_attn_ln"),
    ("self_attn_layer_norm", "attn_ln"),
    ("final_layer_norm", "mlp_ln"),
    ("encoder_attn.", "cross_attn."),
    ("self_attn.", "attn."),
    ("q_proj", "query"),
    ("k_proj", "key"),
    ("v_proj", "value"),
    ("out_proj", "out"),
    ("fc1", "mlp.0"),
    ("fc2", "mlp.2"),
]


def openai_name(hf_key: str) -> str:
    """Map a Hugging Face Whisper parameter name to openai-whisper's name."""
    for old, new in _OPENAI_NAMES:
        hf_key = hf_key.replace(old, new)
    return hf_key


def ct2_model_dir(model_dir: Path, cache: Path) -> Path:
    """The CTranslate2 conversion of model_dir (float32), made once and kept in cache."""
    out = cache / f"ct2-{model_dir.name}"
    if not (out / "model.bin").exists():
        from ctranslate2.converters import TransformersConverter

        converter = TransformersConverter(
            str(model_dir), copy_files=["tokenizer.json", "preprocessor_config.json"]
        )
        converter.convert(str(out), quantization="float32", force=True)
    return out


def gguf_file(model_dir: Path, cache: Path, qtype: str) -> Path:
    """`polyasr quantize`'s GGUF file of model_dir, made once and kept in cache."""
    out = cache / f"{model_dir.name}.{qtype}.gguf"
    if not out.exists():
        from polyasr.cli import main

        cache.mkdir(parents=True, exist_ok=True)
        if main(["quantize", str(model_dir), "--qtype", qtype, "-o", str(out)]):
            raise RuntimeError(f"polyasr quantize {qtype} failed")
    return out


def worker(args: argparse.Namespace) -> None:
    """Load one engine, transcribe once, print one JSON line."""
    start = args.launched_at
    result = Result(engine=args.worker)
    try:
        transcribe = ENGINES[args.worker](args.model, args.audio, args.threads, args.cache_dir)
        ready, cpu = time.time(), time.process_time()
        result.text = transcribe().strip()
        done = time.time()
        result.transcribe_cpu_s = time.process_time() - cpu
        result.load_s, result.cold_s = ready - start, done - start
        result.transcribe_s = done - ready
        result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB
        for key, value in getattr(transcribe, "stats", dict)().items():  # after the timing
            setattr(result, key, value)
    except Exception as exc:  # reported in the table, not raised
        result.error = f"{type(exc).__name__}: {exc}"
    emit_result(result.__dict__)


# --- parent: audio, subprocesses, table -----------------------------------------------------


def default_audio() -> tuple[np.ndarray, str]:
    """At least MIN_AUDIO_S of English speech from the shared data set, and its reference."""
    from polyasr.audio import load_audio

    data = SHARED / "data"
    paths = [data / "en/derived_longform_dev.flac"]
    for line in (data / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["path"].startswith(("en/librivox", "en/librispeech")) and entry["channels"] == 1:
            paths.append(data / entry["path"])
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.float32)
    chunks: list[np.ndarray] = []
    texts: list[str] = []
    for path in paths:
        if sum(len(c) for c in chunks) >= MIN_AUDIO_S * SAMPLE_RATE:
            break
        samples = load_audio(path).mono()
        chunks += [gap, samples] if chunks else [samples]
        texts.append(path.with_suffix(".txt").read_text().strip())
    return np.concatenate(chunks), " ".join(texts)


def write_wav(path: Path, samples: np.ndarray) -> None:
    """16 kHz mono 16-bit PCM WAV."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(pcm.tobytes())


def read_wav(path: Path) -> np.ndarray:
    """Float32 samples of a WAV written by write_wav."""
    with wave.open(str(path), "rb") as f:
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768


def run_worker(engine: str, args: argparse.Namespace, audio: Path) -> Result:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    flags = {"--model": args.model, "--audio": audio, "--threads": args.threads}
    flags |= {"--cache-dir": args.cache_dir, "--launched-at": time.time()}
    cmd = [sys.executable, __file__, "--worker", engine, *map(str, sum(flags.items(), ()))]
    data, error, other_cpu_s = spawn_worker(cmd, env)
    result = Result(**data) if data else Result(engine=engine, error=error)
    result.other_cpu_s = other_cpu_s
    return result


def max_trigram_count(text: str) -> int:
    from polyasr.metrics import normalize_text

    words = normalize_text(text).split()
    return max(Counter(zip(words, words[1:], words[2:], strict=False)).values(), default=0)


def max_compression_ratio(text: str, window: int = 80) -> float:
    """Highest zlib ratio over windows of ~30 s of speech (Whisper's loop test is per window)."""
    words = text.split()
    ratios = [0.0]
    for i in range(0, max(len(words) - window, 0) + 1, window // 2):
        raw = " ".join(words[i : i + window]).encode()
        ratios.append(len(raw) / len(zlib.compress(raw)) if raw else 0.0)
    return max(ratios)


HEADER = ["engine", "RTF", "RTF range", "vs polyasr", "CPU s", "load s", "cold s", "peak MB"]
HEADER += ["WER %", "enc s", "enc GEMM", "steps", "step ms", "vs floor"]
HEADER += ["max 3g", "zlib", "loop", "other CPU s"]


def print_table(
    runs: dict[str, list[Result]],
    duration: float,
    reference: str,
    machine: Machine,
) -> None:
    from polyasr.metrics import wer

    results = [median_run(r) for r in runs.values()]
    base = next((r for r in results if r.engine == "polyasr" and not r.error), None)
    base_rtf = base.transcribe_s / duration if base else None
    ref_3g = max_trigram_count(reference)
    # torch's FLOP counter sees no int8 kernel: quantized rows use the fp32 row's count
    flops = max((r.encode_flops for r in results if not r.error), default=0.0)
    rows = [HEADER]
    for r in results:
        if r.error:
            continue
        rtf = r.transcribe_s / duration
        rtfs = [x.transcribe_s / duration for x in runs[r.engine] if not x.error]
        trigrams, zratio = max_trigram_count(r.text), max_compression_ratio(r.text)
        step_s = r.decode_s / r.steps if r.steps else 0.0
        rows.append(
            [
                r.engine,
                f"{rtf:.3f}",
                f"{min(rtfs):.3f}-{max(rtfs):.3f}",
                f"{rtf / base_rtf:.2f}x" if base_rtf else "-",
                f"{r.transcribe_cpu_s:.1f}",
                f"{r.load_s:.2f}",
                f"{r.cold_s:.2f}",
                f"{r.peak_rss_mb:.0f}",
                f"{100 * wer(reference, r.text):.2f}",
                f"{r.encode_s:.2f}" if r.encode_s else "-",
                machine.gemm_share(flops, r.encode_s) if r.encode_s else "-",
                str(r.steps) if r.steps else "-",
                f"{1e3 * step_s:.1f}" if step_s else "-",
                f"{step_s / machine.floor_s(r.step_bytes):.2f}x" if step_s else "-",
                str(trigrams),
                f"{zratio:.2f}",
                "yes" if zratio > 2.4 or trigrams >= ref_3g + 3 else "no",
                f"{r.other_cpu_s:.1f}",
            ]
        )
    repeats = max(len(r) for r in runs.values())
    print(
        f"\nwhisper-base on CPU, {machine.threads} threads, {duration:.1f} s of English speech; "
        f"{repeats} round(s), each engine in a fresh process per round with one cold call (no "
        "warm-up); each row is the engine's median run, RTF range over all rounds; "
        f"load average before the run: {machine.load_avg:.2f}.\n"
    )
    print(table(rows[0], rows[1:], left=1))
    for r in results:
        if r.error:
            print(f"{r.engine}: {r.error}")
    print(machine.line())
    print(
        "\nvs polyasr = engine RTF / polyasr RTF (>1 means polyasr is faster). CPU s = CPU time "
        "of the transcription, all threads. max 3g = most repeats of one word 3-gram "
        f"(reference: {ref_3g}); loop = zlib ratio (worst 80-word window) > 2.4 or max 3g >= "
        "reference + 3. polyasr rows: enc s = encoder time; enc GEMM = its FLOPs (torch's FLOP "
        "counter, after the timed call; for GGUF rows the fp32 count) per second as a share of "
        "the GEMM ceiling; steps = decoder calls; step ms = decoder + logits time per step; "
        "vs floor = step ms / the time to read the step's weights (decoder layers without the "
        "cross K/V projections, plus the tied output projection, at their stored size) at "
        "the matrix-vector bandwidth. "
        "other CPU s = CPU time other processes used while the worker ran: "
        "well above 0 means the row was slowed by competition for the cores."
    )


def main() -> None:
    default_cache = (
        Path(sys.prefix) if sys.prefix != sys.base_prefix else Path(tempfile.gettempdir())
    ) / "polyasr-bench-cache"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset")
    parser.add_argument("--model", type=Path, default=SHARED / "models/whisper-base")
    parser.add_argument("--audio", type=Path, help="audio file (default: built from shared/data)")
    parser.add_argument("--reference", type=Path, help="reference text file for --audio")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds over all engines (order rotates)"
    )
    parser.add_argument("--cache-dir", type=Path, default=default_cache, help="converted models")
    parser.add_argument("--print-text", action="store_true", help="also print each hypothesis")
    parser.add_argument("--worker", choices=list(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--launched-at", type=float, default=time.time(), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    if bool(args.audio) != bool(args.reference):
        parser.error("--audio and --reference go together")
    if any(e.startswith("faster-whisper") for e in engines):
        ct2_model_dir(args.model, args.cache_dir)  # convert before timing anything
    for engine in engines:
        if engine.startswith("polyasr-q"):
            gguf_file(args.model, args.cache_dir, engine.removeprefix("polyasr-"))

    if args.audio:
        from polyasr.audio import load_audio

        samples, reference = load_audio(args.audio).mono(), args.reference.read_text()
    else:
        samples, reference = default_audio()
    duration = len(samples) / SAMPLE_RATE
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "bench.wav"  # every engine decodes this same 16 kHz mono WAV
        write_wav(audio, samples)
        machine = Machine.measure(args.threads)
        runs: dict[str, list[Result]] = {e: [] for e in engines}
        for round_ in range(args.repeat):
            order = engines[round_ % len(engines) :] + engines[: round_ % len(engines)]
            for engine in order:
                print(f"round {round_ + 1}: running {engine} ...", file=sys.stderr, flush=True)
                runs[engine].append(run_worker(engine, args, audio))
    print_table(runs, duration, reference, machine)
    if args.print_text:
        for r in map(median_run, runs.values()):
            print(f"\n[{r.engine}] {r.text}")


if __name__ == "__main__":
    main()
