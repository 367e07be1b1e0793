"""GigaAM v3 on CPU: polyasr against the official GigaAM package, same checkpoint, same audio.

A real-size random-weight GigaAM v3 (`v3_ctc` and `v3_e2e_rnnt` heads) is built once with the
official classes in the reference venv and cached; every engine then loads that very file in its
own subprocess and transcribes the same 60 s of speech. Run from the repository root:

    .venv/bin/python benchmarks/gigaam_cpu.py [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
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
    SAMPLE_RATE,
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

REF_VENV = REPO_ROOT / ".ref-venv-gigaam"
DURATION_S = 60.0
GAP_S = 0.5
PIECES_S = ((0.0, 25.0), (25.0, 50.0), (50.0, 60.0))  # polyasr's fixed 25 s windows (vad=False)
HEADS = {"ctc": "v3_ctc", "e2e_rnnt": "v3_e2e_rnnt"}
ENGINES = ("polyasr", "polyasr-vad", "polyasr-bf16", "official")

# Real v3 dims (shared/docs/models/gigaam.md, section 2) and the random-weight shaping.
BUILD_VERSION = 1
SEED = 3003
HEAD_SEED = 4
SPM_VOCAB = 1024
TOKENS_PER_S = 12.5  # the blank bias is searched so that each head emits about this many
CTC_LOGIT_STD = 4.0  # std of the centred CTC logits
RNNT_ENC_STD = 1.0  # std of the centred joint encoder projection
RNNT_PRED_SCALE = 8.0
RNNT_EMBED_SCALE = 3.0
RNNT_OUT_SCALE = 3.0
RNNT_UNK_BIAS = -4.0  # keep <unk> (id 0) from being emitted


@dataclass
class Result:
    """What one worker measured; times are seconds since the parent launched it."""

    head: str
    engine: str
    load_s: float = 0.0  # process start -> model ready
    cold_s: float = 0.0  # process start -> first text available
    transcribe_s: float = 0.0  # wall time of the one transcription call
    transcribe_cpu_s: float = 0.0  # CPU time (all threads) of that call
    encode_s: float = 0.0  # part of transcribe_s spent in log-mel + encoder
    encode_flops: float = 0.0  # FLOPs of the encoder (polyasr rows; counted after the timing)
    peak_rss_mb: float = 0.0
    other_cpu_s: float = 0.0  # CPU used by other processes meanwhile (set by the parent)
    tokens: list[int] = field(default_factory=list)  # emitted ids, pieces in time order
    text: str = ""
    error: str = ""


def piece_bounds() -> list[tuple[int, int]]:
    return [(int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)) for a, b in PIECES_S]


def padded_pieces(samples: np.ndarray):
    """The benchmark pieces as one zero-padded batch [B, samples] and their lengths."""
    import torch

    wavs = [torch.from_numpy(samples[a:b]) for a, b in piece_bounds()]
    lengths = torch.tensor([len(w) for w in wavs])
    batch = torch.zeros(len(wavs), int(lengths.max()))
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = w
    return batch, lengths


def checkpoint_path(cache: Path, head: str) -> Path:
    name = HEADS[head]
    return cache / name / f"{name}.ckpt"


def import_gigaam():
    """The official package, with make_gigaam.py's stub for torchaudio's compiled extension."""
    sys.path.insert(0, str(REPO_ROOT / "tests" / "golden"))
    import make_gigaam

    return make_gigaam._import_gigaam(), make_gigaam


# --- engines (each runs inside its worker process; heavy imports stay local) ---------------

Transcribe = Callable[[], tuple[str, list[int], float]]  # -> text, token ids, encoder seconds


def run_polyasr(
    ckpt: Path, audio: Path, threads: int, vad: bool, dtype: str = "float32"
) -> Transcribe:
    import torch

    import polyasr

    torch.set_num_threads(threads)
    model = polyasr.load(str(ckpt), device="cpu", dtype=dtype)
    count_flops = flop_replay(model.recognizer, "encode")
    encode_s = time_calls(model.recognizer, "encode")
    recognized = record_calls(model.recognizer, "recognize")

    def transcribe() -> tuple[str, list[int], float]:
        text = model.transcribe(np.load(audio), vad=vad).text
        tokens = [k for batch in recognized for ids, _, _ in batch for k in ids]
        return text, tokens, encode_s[0]

    transcribe.count_flops = count_flops
    return transcribe


def run_official(ckpt: Path, audio: Path, threads: int, vad: bool) -> Transcribe:
    import torch

    torch.set_num_threads(threads)
    gigaam, _ = import_gigaam()
    model = load_official(gigaam, ckpt)

    def transcribe() -> tuple[str, list[int], float]:
        batch, lengths = padded_pieces(np.load(audio))
        with torch.inference_mode():
            start = time.perf_counter()
            encoded, encoded_len = model.forward(batch, lengths)
            encode_s = time.perf_counter() - start
            decoded = model.decoding.decode(model.head, encoded, encoded_len)  # as _decode does
        text = " ".join(t.strip() for t, _, _ in decoded if t.strip())
        return text, [k for _, ids, _ in decoded for k in ids], encode_s

    return transcribe


def load_official(gigaam, ckpt: Path):
    """What `gigaam.load_model` does after the download, on CPU: fp32, eval, strict."""
    import torch

    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = checkpoint["cfg"]
    cfg.encoder.flash_attn = False
    tokenizer = ckpt.parent / f"{ckpt.stem}_tokenizer.model"
    if tokenizer.exists():
        cfg.decoding.model_path = str(tokenizer)
    model = gigaam.GigaAMASR(cfg)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


ENGINE_RUNNERS: dict[str, tuple[Callable[[Path, Path, int, bool], Transcribe], bool]] = {
    "polyasr": (run_polyasr, False),
    "polyasr-vad": (run_polyasr, True),
    "polyasr-bf16": (partial(run_polyasr, dtype="bfloat16"), False),
    "official": (run_official, False),
}


def worker(args: argparse.Namespace) -> None:
    """Load one engine, transcribe once, print one JSON line."""
    run, vad = ENGINE_RUNNERS[args.worker]
    ckpt = checkpoint_path(args.cache_dir, args.head)
    result = Result(head=args.head, engine=args.worker)
    measure_once(result, args.launched_at, lambda: run(ckpt, args.audio, args.threads, vad))


# --- checkpoint build (reference venv) ------------------------------------------------------


def real_cfg(make_gigaam, head: str, classes: int) -> dict:
    """make_gigaam's v3 cfg with the real dims."""
    cfg = make_gigaam._cfg_dict("ctc" if head == "ctc" else "rnnt", classes)
    cfg["encoder"].update(n_layers=16, d_model=768, n_heads=16, ff_expansion_factor=4)
    if head == "ctc":
        cfg["head"]["feat_in"] = 768
    else:
        cfg["head"]["decoder"]["pred_hidden"] = 320
        cfg["head"]["joint"].update(enc_hidden=768, pred_hidden=320, joint_hidden=320)
    return cfg


def count_tokens(model, encoded, encoded_len) -> int:
    return sum(len(ids) for _, ids, _ in model.decoding.decode(model.head, encoded, encoded_len))


def search_blank_bias(model, encoded, encoded_len, bias, target: int) -> tuple[float, int]:
    """Bisect the blank logit bias until the greedy decoding emits about `target` tokens."""
    low, high = -20.0, 20.0
    for _ in range(16):
        bias[-1] = (low + high) / 2
        if count_tokens(model, encoded, encoded_len) > target:
            low = float(bias[-1])
        else:
            high = float(bias[-1])
    bias[-1] = (low + high) / 2
    return float(bias[-1]), count_tokens(model, encoded, encoded_len)


def shape_head(model, head: str, encoded, encoded_len) -> dict:
    """Centre and scale the random output layers on the benchmark's encoder frames."""
    import torch

    torch.manual_seed(HEAD_SEED)
    for module in model.head.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    frames = torch.cat([encoded[b, :, :n].T for b, n in enumerate(encoded_len.tolist())])
    mu = frames.mean(0)
    target = int(TOKENS_PER_S * DURATION_S)
    if head == "ctc":
        conv = model.head.decoder_layers[0]
        conv.weight.mul_(CTC_LOGIT_STD / ((frames - mu) @ conv.weight[:, :, 0].T).std())
        conv.bias.sub_(conv.weight[:, :, 0] @ mu)
        blank_bias, tokens = search_blank_bias(model, encoded, encoded_len, conv.bias, target)
    else:
        joint = model.head.joint
        joint.enc.weight.mul_(RNNT_ENC_STD / ((frames - mu) @ joint.enc.weight.T).std())
        joint.enc.bias.sub_(joint.enc.weight @ mu)
        joint.pred.weight.mul_(RNNT_PRED_SCALE)
        model.head.decoder.embed.weight.mul_(RNNT_EMBED_SCALE)
        out = joint.joint_net[1]
        out.weight.mul_(RNNT_OUT_SCALE)
        out.bias[0] += RNNT_UNK_BIAS
        blank_bias, tokens = search_blank_bias(model, encoded, encoded_len, out.bias, target)
    return {"blank_bias": blank_bias, "tokens": tokens}


def min_margin(model, head: str, encoded, encoded_len, make_gigaam) -> float:
    """Smallest top-1 vs top-2 log-prob gap over every greedy decision on the benchmark audio."""
    if head == "ctc":
        logp = model.head(encoded)
        return min(
            make_gigaam._margin(logp[b, :n].numpy()) for b, n in enumerate(encoded_len.tolist())
        )
    with make_gigaam._JointRecorder(model.head.joint) as rec:
        model.decoding.decode(model.head, encoded, encoded_len)
    return min(make_gigaam._margin(c.numpy()) for c in rec.calls)


def build(cache: Path, audio: Path, audio_sha: str) -> None:
    """Build, shape and save both heads in the published checkpoint layout, then build.json."""
    import torch
    from omegaconf import OmegaConf

    torch.set_num_threads(2)
    gigaam, make_gigaam = import_gigaam()
    samples = np.load(audio)
    batch, lengths = padded_pieces(samples)
    info: dict = {"version": BUILD_VERSION, "audio_sha": audio_sha, "heads": {}}
    for head, name in HEADS.items():
        ckpt = checkpoint_path(cache, head)
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        classes = 34
        run_cfg = OmegaConf.create(real_cfg(make_gigaam, head, classes))
        if head != "ctc":
            tokenizer = ckpt.parent / f"{name}_tokenizer.model"
            # unigram cannot reach 1024 pieces on so little text
            make_gigaam.train_spm(tokenizer, vocab_size=SPM_VOCAB, model_type="bpe")
            classes = SPM_VOCAB + 1
            run_cfg = OmegaConf.create(real_cfg(make_gigaam, head, classes))
        cfg = copy.deepcopy(run_cfg)  # stored with the bare tokenizer file name
        if head != "ctc":
            run_cfg.decoding.model_path = str(tokenizer)
        torch.manual_seed(SEED)
        model = gigaam.GigaAMASR(run_cfg).eval()
        make_gigaam._randomize(model, torch.Generator().manual_seed(SEED))
        with torch.inference_mode():
            encoded, encoded_len = model.forward(batch, lengths)
        with torch.no_grad():
            shaped = shape_head(model, head, encoded, encoded_len)
            shaped["min_margin"] = min_margin(model, head, encoded, encoded_len, make_gigaam)
        shaped["parameters"] = sum(p.numel() for p in model.parameters())
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        torch.save({"cfg": cfg, "state_dict": state}, ckpt)
        info["heads"][head] = shaped
        print(head, shaped, file=sys.stderr, flush=True)
    (cache / "build.json").write_text(json.dumps(info, indent=1) + "\n")


def ensure_checkpoints(args: argparse.Namespace, audio: Path, audio_sha: str) -> dict:
    """Build the cached checkpoints in the reference venv unless they match this audio."""
    info_path = args.cache_dir / "build.json"
    if info_path.exists() and not args.rebuild:
        info = json.loads(info_path.read_text())
        heads_ok = all(checkpoint_path(args.cache_dir, h).exists() for h in HEADS)
        if heads_ok and info["version"] == BUILD_VERSION and info["audio_sha"] == audio_sha:
            return info
    print("building the real-size checkpoints (once) ...", file=sys.stderr, flush=True)
    cmd = [str(args.ref_python), __file__, "--build", "--audio", str(audio)]
    cmd += ["--cache-dir", str(args.cache_dir), "--audio-sha", audio_sha]
    subprocess.run(cmd, env=worker_env(args, "official"), check=True)
    return json.loads(info_path.read_text())


# --- parent: audio, subprocesses, table -----------------------------------------------------


def default_audio() -> np.ndarray:
    """Exactly DURATION_S of speech: the Russian clips, then German, French and English ones."""
    prefixes = ("ru/", "other/", "en/librivox", "en/librispeech", "en/mfa")
    return concatenated_speech(SHARED, DURATION_S, prefixes, GAP_S)


def worker_env(args: argparse.Namespace, engine: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    env["POLYASR_CHECKPOINT_CACHE"] = "off"  # every round loads the .ckpt as a first use does
    if engine == "official":
        env["PYTHONPATH"] = str(REF_VENV / "src")
    return env


def run_worker(head: str, engine: str, args: argparse.Namespace, audio: Path) -> Result:
    python = args.ref_python if engine == "official" else Path(sys.executable)
    flags = {"--head": head, "--audio": audio, "--threads": args.threads}
    flags |= {"--cache-dir": args.cache_dir, "--launched-at": time.time()}
    cmd = [str(python), __file__, "--worker", engine, *map(str, sum(flags.items(), ()))]
    data, error, other_cpu_s = spawn_worker(cmd, worker_env(args, engine))
    result = Result(**data) if data else Result(head=head, engine=engine, error=error)
    result.other_cpu_s = other_cpu_s
    return result


HEADER = ["head", "engine", "RTF", "RTF range", "vs polyasr", "CPU s", "enc s", "enc GEMM"]
HEADER += ["rest s"]
HEADER += ["load s", "cold s", "peak MB", "tokens", "tok/s", "same tokens", "other CPU s"]


def same_tokens(runs: dict[tuple[str, str], list[Result]], head: str, engine: str) -> str:
    """Whether every run of polyasr (fixed windows) and official emitted the same ids."""
    both = [runs.get((head, e), []) for e in ("polyasr", "official")]
    if engine not in ("polyasr", "official") or not all(both):
        return "-"
    sequences = {tuple(r.tokens) for rs in both for r in rs if not r.error}
    return "-" if not sequences else "yes" if len(sequences) == 1 else "NO"


def print_table(
    runs: dict[tuple[str, str], list[Result]],
    build_info: dict,
    machine: Machine,
) -> None:
    rows = [HEADER]
    errors = []
    for (head, engine), head_runs in runs.items():
        r = median_run(head_runs)
        if r.error:
            errors.append(f"{head} {engine}: {r.error}")
            continue
        base_runs = runs.get((head, "polyasr"), [])
        base = median_run(base_runs) if base_runs else None
        rtf = r.transcribe_s / DURATION_S
        rtfs = [x.transcribe_s / DURATION_S for x in head_runs if not x.error]
        ratio = f"{r.transcribe_s / base.transcribe_s:.2f}x" if base and not base.error else "-"
        rows.append(
            [
                head,
                engine,
                f"{rtf:.3f}",
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
                f"{len(r.tokens) / DURATION_S:.1f}",
                same_tokens(runs, head, engine),
                f"{r.other_cpu_s:.1f}",
            ]
        )
    repeats = max(len(r) for r in runs.values())
    print(
        f"\nGigaAM v3 (real size, random weights) on CPU, fp32 (polyasr-bf16: bfloat16), "
        f"{machine.threads} threads, {DURATION_S:.0f} s of speech; {repeats} round(s), each "
        "engine in a fresh process per "
        "round with one cold call (no warm-up); each row is the engine's median run, RTF range "
        f"over all rounds; load average before the run: {machine.load_avg:.2f}.\n"
    )
    print(table(rows[0], rows[1:], left=2))
    print(*errors, sep="\n")
    print(machine.line())
    for head in HEADS:
        base = median_run(runs[(head, "polyasr")]) if (head, "polyasr") in runs else None
        if base is not None and not base.error:
            share = 100 * base.encode_s / base.transcribe_s
            print(
                f"polyasr {head}: encoder (log-mel + encoder) {base.encode_s:.2f} s = "
                f"{share:.0f} % of the call, head decoding + rest {100 - share:.0f} %"
            )
    for head, shaped in build_info["heads"].items():
        print(
            f"checkpoint {HEADS[head]}: {shaped['parameters'] / 1e6:.1f} M parameters, blank "
            f"bias {shaped['blank_bias']:+.3f}, {shaped['tokens']} tokens at build, smallest "
            f"argmax margin {shaped['min_margin']:.1e}"
        )
    print(
        "\nvs polyasr = engine RTF / polyasr RTF of the same head (>1 means polyasr is faster). "
        "enc s = log-mel + encoder inside the call; rest s = the other part (head, greedy "
        "decoding, text; for polyasr-vad also the Silero VAD). enc GEMM = the encoder's "
        "FLOPs (counted by torch's FLOP counter in the polyasr worker, after its timed call) "
        "per enc s, as a share of the GEMM ceiling. same tokens = polyasr (fixed "
        "windows) and official emitted identical ids in every round. other CPU s = CPU time "
        "other processes used while the worker ran: well above 0 means the row was slowed. "
        "polyasr-bf16 computes in bfloat16 (its enc GEMM is a share of the fp32 ceiling): fast "
        "where the CPU multiplies bfloat16 natively (AMX, AVX512-BF16), slow elsewhere; random "
        "weights' tiny argmax margins make its ids differ, so they are not compared."
    )


def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], ENGINES, REF_VENV)
    parser.add_argument("--heads", default=",".join(HEADS), help="comma-separated subset")
    parser.add_argument("--head", choices=list(HEADS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.build:
        return build(args.cache_dir, args.audio, args.audio_sha)

    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = (set(heads) - set(HEADS)) | (set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown heads or engines: {', '.join(sorted(unknown))}")
    samples = default_audio()
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "bench.npy"  # every engine reads these same float32 samples
        np.save(audio, samples)
        build_info = ensure_checkpoints(args, audio, hashlib.sha256(samples).hexdigest())
        machine = Machine.measure(args.threads)
        jobs = [(h, e) for h in heads for e in engines]
        runs: dict[tuple[str, str], list[Result]] = {job: [] for job in jobs}
        for round_ in range(args.repeat):
            for head, engine in jobs[round_ % len(jobs) :] + jobs[: round_ % len(jobs)]:
                print(f"round {round_ + 1}: {head} {engine} ...", file=sys.stderr, flush=True)
                runs[(head, engine)].append(run_worker(head, engine, args, audio))
    print_table(runs, build_info, machine)
    if args.print_text:
        for r in map(median_run, runs.values()):
            print(f"\n[{r.head} {r.engine}] {r.text}")


if __name__ == "__main__":
    main()
