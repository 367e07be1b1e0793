"""Load time of each family's published files, without and with the checkpoint cache.

For every model, `polyasr.load(path, device="cpu", dtype="float32")` runs in a fresh process
three times: cold (POLYASR_CHECKPOINT_CACHE=off: the published files are parsed), first (an
empty cache: parsed, then the cache file written) and second (from the cache file). Each row
gives the time from process start to the loaded model and the time of the `load` call alone,
then the time to touch every 4 KiB page of the weights once afterwards (a cached model's weights
are memory-mapped, so their pages are mapped in when first used) and whether a checksum of the
weights was equal in all runs.

Models: whisper-base with its real weights ($POLYASR_SHARED/models/whisper-base, fp16
safetensors), and real-size random-weight Parakeet TDT 0.6B (`.nemo`), GigaAM v3 CTC (`.ckpt`)
and Qwen3-ASR 0.6B (hub layout, bf16 safetensors). The other benchmarks build those with the
reference packages (NeMo, gigaam, qwen-asr) in their reference venvs; this one only needs the
files' layout, so it writes them from polyasr's own modules (their parameter names are the
published ones) with the dims of those benchmarks and the tokenizers of the golden fixtures.
They are built once into --work-dir. Run from the repository root:

    .venv/bin/python benchmarks/load_cache.py [--models whisper-base,parakeet] [--repeat 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchlib import REPO_ROOT, SHARED, emit_result, spawn_worker, table

GOLDEN = REPO_ROOT / "tests" / "golden"
BUILD_VERSION = 1
SEED = 13
MODES = ("cold", "first", "second")


def random_state(module) -> dict:
    """Random weights (std 0.02) for every tensor of a module built on the meta device."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    state = {}
    for name, meta in module.state_dict().items():
        if meta.is_floating_point():
            tensor = torch.randn(meta.shape, generator=generator) * 0.02
            state[name] = tensor.abs() + 1 if name.endswith("running_var") else tensor
        else:
            state[name] = torch.zeros(meta.shape, dtype=meta.dtype)
    return state


def build_parakeet(out: Path) -> Path:
    """A `.nemo` of Parakeet TDT 0.6B v3's size: the tiny fixture's archive (real v3
    tokenizer) with the dims of benchmarks/parakeet_cpu.py and random weights."""
    import torch
    import yaml
    from parakeet_cpu import REAL_DIMS

    from polyasr.models.parakeet.checkpoint import dims_from_config
    from polyasr.models.parakeet.model import ParakeetTDT

    d = REAL_DIMS
    tiny = GOLDEN / "parakeet-tdt-tiny" / "parakeet-tdt-tiny.nemo"
    with tarfile.open(tiny) as source:
        members = {m.name: source.extractfile(m).read() for m in source.getmembers() if m.isfile()}
    cfg = yaml.safe_load(members["./model_config.yaml"])
    enc = cfg["encoder"]
    enc.update(n_layers=d["n_layers"], d_model=d["d_model"], n_heads=d["n_heads"])
    enc["subsampling_conv_channels"] = d["channels"]
    cfg["model_defaults"].update(
        enc_hidden=d["d_model"], pred_hidden=d["pred"], joint_hidden=d["joint"]
    )
    cfg["decoder"]["prednet"]["pred_hidden"] = d["pred"]
    cfg["joint"]["jointnet"].update(
        joint_hidden=d["joint"], encoder_hidden=d["d_model"], pred_hidden=d["pred"]
    )
    vocab = cfg["decoder"]["vocab_size"]
    shapes = {  # the tensors dims_from_config reads its sizes from
        "joint.joint_net.2.weight": (vocab + 1 + 5, d["joint"]),
        "decoder.prediction.embed.weight": (vocab + 1, d["pred"]),
        "joint.enc.weight": (d["joint"], d["d_model"]),
    }
    dims = dims_from_config(cfg, {k: torch.empty(s, device="meta") for k, s in shapes.items()})
    with torch.device("meta"):
        module = ParakeetTDT(dims)
    weights = io.BytesIO()
    torch.save(random_state(module), weights)
    members["./model_config.yaml"] = yaml.safe_dump(cfg, sort_keys=False).encode()
    members["./model_weights.ckpt"] = weights.getvalue()
    path = out / "parakeet-tdt-0.6b-v3-random.nemo"
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def build_gigaam(out: Path) -> Path:
    """A `v3_ctc.ckpt` of the real size (cfg of benchmarks/gigaam_cpu.py, random weights)."""
    import torch

    sys.path.insert(0, str(GOLDEN))
    import make_gigaam
    from gigaam_cpu import real_cfg

    from polyasr.models.gigaam.checkpoint import dims_from_config
    from polyasr.models.gigaam.model import GigaAM

    cfg = real_cfg(make_gigaam, "ctc", len(make_gigaam.CHAR_VOCAB) + 1)
    head = torch.empty(cfg["head"]["num_classes"], cfg["head"]["feat_in"], 1, device="meta")
    path = out / "v3_ctc.ckpt"
    dims = dims_from_config(cfg, {"head.decoder_layers.0.weight": head}, "ctc", path)
    with torch.device("meta"):
        module = GigaAM(dims, "ctc")
    torch.save({"cfg": cfg, "state_dict": random_state(module)}, path)
    return path


def build_qwen3asr(out: Path) -> Path:
    """Qwen3-ASR-0.6B's hub layout: the tiny fixture's files (real-format tokenizer), the
    config of benchmarks/qwen3asr_cpu.py and random bf16 weights with the stored lm_head."""
    import torch
    from qwen3asr_cpu import AUDIO_CONFIG, TEXT_CONFIG
    from safetensors.torch import save_file

    sys.path.insert(0, str(GOLDEN))
    import make_qwen3asr

    from polyasr.models.qwen3asr.checkpoint import dims_from_config
    from polyasr.models.qwen3asr.model import Qwen3AsrThinker

    path = make_qwen3asr.materialize(make_qwen3asr.FIXTURE, out / "qwen3-asr-0.6b-random")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    config["thinker_config"]["audio_config"].update(AUDIO_CONFIG)
    config["thinker_config"]["text_config"].update(TEXT_CONFIG)
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    with torch.device("meta"):
        module = Qwen3AsrThinker(*dims_from_config(config))
    state = {f"thinker.{k}": v.to(torch.bfloat16) for k, v in random_state(module).items()}
    state["thinker.lm_head.weight"] = state["thinker.model.embed_tokens.weight"].clone()
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


BUILDERS = {
    "parakeet": build_parakeet,
    "gigaam": build_gigaam,
    "qwen3-asr": build_qwen3asr,
}


def model_paths(work: Path, names: list[str]) -> dict[str, Path]:
    """The model of each name, built into `work/models` unless it is there already."""
    models, paths = work / "models", {}
    stamp = models / "build.json"
    if not stamp.is_file() or json.loads(stamp.read_text()).get("version") != BUILD_VERSION:
        shutil.rmtree(models, ignore_errors=True)
    models.mkdir(parents=True, exist_ok=True)
    built = json.loads(stamp.read_text()).get("paths", {}) if stamp.is_file() else {}
    for name in names:
        if name == "whisper-base":
            paths[name] = SHARED / "models" / "whisper-base"
            continue
        if name not in built or not Path(built[name]).exists():
            print(f"building {name} (once) ...", file=sys.stderr, flush=True)
            built[name] = str(BUILDERS[name](models))
            stamp.write_text(json.dumps({"version": BUILD_VERSION, "paths": built}, indent=1))
        paths[name] = Path(built[name])
    return paths


def worker(path: Path, launched_at: float) -> None:
    """Load the model once and print the timings and the weights' checksum."""
    import resource

    import torch

    import polyasr

    torch.set_num_threads(2)
    start = time.time()
    model = polyasr.load(str(path), device="cpu", dtype="float32")
    loaded = time.time()
    modules = [m for m in vars(model.recognizer).values() if isinstance(m, torch.nn.Module)]
    weights = [w for m in modules for w in m.state_dict().values() if w.dtype == torch.float32]
    sum(float(w.reshape(-1)[::1024].sum()) for w in weights)  # a value of each 4 KiB page
    touched = time.time()
    # an integer sum of the bits: exact and order-free, so equal weights give equal sums
    checksum = sum(int(w.view(torch.int32).sum(dtype=torch.int64)) for w in weights)
    emit_result(
        {
            "process_s": loaded - launched_at,
            "load_s": loaded - start,
            "touch_s": touched - loaded,
            "checksum": checksum,
            "parameters": sum(p.numel() for m in modules for p in m.parameters()),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def run(path: Path, mode: str, cache: Path) -> dict:
    """One load in a fresh process; `cache` is emptied first for the "first" mode."""
    if mode == "first":
        shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, POLYASR_CACHE=str(cache), PYTHONPATH=str(REPO_ROOT / "src"))
    env["POLYASR_CHECKPOINT_CACHE"] = "off" if mode == "cold" else "on"
    cmd = [sys.executable, __file__, "--worker", str(path), "--launched-at", str(time.time())]
    result, error, other_cpu_s = spawn_worker(cmd, env)
    if result is None:
        raise SystemExit(f"{path} ({mode}): {error}")
    result["other_cpu_s"] = other_cpu_s
    return result


def cache_size_mb(cache: Path) -> float:
    return sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="whisper-base,parakeet,gigaam,qwen3-asr")
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "polyasr-load-cache-bench"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the three loads (median)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--launched-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.launched_at)
        return
    sys.path.insert(0, str(REPO_ROOT / "src"))
    paths = model_paths(args.work_dir, args.models.split(","))
    rows = []
    for name, path in paths.items():
        cache = args.work_dir / "cache" / name
        runs = {mode: [] for mode in MODES}
        for _ in range(args.repeat):
            for mode in MODES:
                runs[mode].append(run(path, mode, cache))
        size = cache_size_mb(cache)
        checksums = {r["checksum"] for mode in MODES for r in runs[mode]}
        for mode in MODES:
            results = runs[mode]
            rows.append(
                [
                    name if mode == "cold" else "",
                    f"{results[0]['parameters'] / 1e6:.0f} M" if mode == "cold" else "",
                    mode,
                    f"{statistics.median(r['process_s'] for r in results):.2f}",
                    f"{statistics.median(r['load_s'] for r in results):.2f}",
                    f"{statistics.median(r['touch_s'] for r in results):.2f}",
                    f"{statistics.median(r['peak_rss_mb'] for r in results):.0f}",
                    f"{size:.0f}" if mode == "second" else "",
                    ("yes" if len(checksums) == 1 else "NO") if mode == "second" else "",
                    f"{max(r['other_cpu_s'] for r in results):.1f}",
                ]
            )
    header = ["model", "params", "load", "process s", "load() s", "touch s", "peak MB"]
    header += ["cache MB", "same weights", "other CPU s"]
    print(table(header, rows, left=3))
    print(
        f"\n{os.cpu_count()} CPUs, torch threads 2, median of {args.repeat}; OS page cache warm "
        "(files just written or read); other CPU s: the most CPU time other processes used "
        "during one of the runs (well above 0: the machine was not idle)."
    )


if __name__ == "__main__":
    main()
