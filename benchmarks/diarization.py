"""Speaker diarization: DER and speed of polyasr (segmentation-3.0 + CAM++, and the mean log-mel
baseline) side by side with pyannote.audio's own pipeline on the same two models.

Every system runs in a worker process of its own over the recordings with RTTM references in
`$POLYASR_SHARED/data/manifest.jsonl` (task `diarization`: the pyannote tutorial sample and six
30 s AMI excerpts with UEMs), or `--audio` files with `--rttm`. The parent scores every result
with pyannote.metrics (the `bench` extra): pooled DER over all files (error seconds over
reference speech seconds), with no collar and with a 0.25 s collar (total width), overlapped
speech scored; the speaker-count hits; seconds of processing per hour of audio (models loaded
before the clock starts; `load s` apart).

    .bench-venv/bin/python benchmarks/diarization.py
    .bench-venv/bin/python benchmarks/diarization.py --systems polyasr,mean-mel --per-file
    .bench-venv/bin/python benchmarks/diarization.py --pyannote .ref-venv-pyannote/bin/python

The pyannote.audio row needs a reference environment (see benchmarks/README.md): its worker
builds pyannote's `SpeakerDiarization` pipeline with the local segmentation-3.0 checkpoint, a
CAM++ embedding wrapper around polyasr's native CAM++ (the same weights), the 3.1 recipe
(centroid linkage, min cluster size 12, embeddings without overlapped frames, segmentation step
1 s) and the clustering threshold of `--threshold`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchlib import table

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
SEGMENTATION = SHARED / "models" / "pyannote-segmentation-3.0" / "pytorch_model.bin"
CAMPLUS = SHARED / "models" / "campplus-zh-en-common" / "campplus_cn_en_common.pt"
SPEAKERLAB = REPO / ".ref-venv-campplus" / "src"
"""The folder holding 3D-Speaker's `speakerlab` package (see tests/golden/make_campplus.py)."""
RESULT = "DIARIZATION_RESULT "
SYSTEMS = ("polyasr", "mean-mel", "pyannote")
DEFAULT_THRESHOLD = {"polyasr": 0.925, "mean-mel": 0.925, "pyannote": 0.925}


def recordings(args) -> list[dict]:
    """(path, rttm, uem) of each recording to score."""
    if args.audio:
        return [
            {"path": str(a), "rttm": str(r), "uem": None} for a, r in zip(args.audio, args.rttm)
        ]
    rows = []
    for line in (SHARED / "data" / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["task"] == "diarization":
            rttm = SHARED / "data" / row["rttm"]
            uem = SHARED / "data" / row["uem"] if row.get("uem") else None
            rows.append(
                {
                    "path": str(SHARED / "data" / row["path"]),
                    "rttm": str(rttm),
                    "uem": uem and str(uem),
                }
            )
    return rows


def worker(
    system: str, files: list[str], threshold: float, threads: int, settings: list[str]
) -> None:
    """Diarize `files` with one system; print its turns and timings as one JSON line."""
    import torch

    torch.set_num_threads(threads)
    started = time.perf_counter()
    if system == "pyannote":
        run = _pyannote(threshold)
    else:
        import polyasr

        os.environ["POLYASR_SEGMENTATION_MODEL"] = str(SEGMENTATION)
        os.environ["POLYASR_EMBEDDING_MODEL"] = str(CAMPLUS)
        embedding = "mean-mel" if system == "mean-mel" else "campplus"
        extra = {k: json.loads(v) for k, v in (item.split("=", 1) for item in settings)}
        options = polyasr.DiarizeOptions(
            mode="cluster", embedding=embedding, threshold=threshold, **extra
        )
        polyasr.diarize(files[0], options)  # loads the models
        run = lambda path: [(t.start, t.end, t.speaker) for t in polyasr.diarize(path, options)]  # noqa: E731
    load_s = time.perf_counter() - started
    out, seconds = {}, 0.0
    for path in files:
        t = time.perf_counter()
        out[path] = run(path)
        seconds += time.perf_counter() - t
    print(RESULT + json.dumps({"turns": out, "seconds": seconds, "load_s": load_s}), flush=True)


def _pyannote(threshold: float):
    """pyannote.audio's SpeakerDiarization with segmentation-3.0 and CAM++ as 3D-Speaker's own
    code computes it (`FBank` + `CAMPPlus`, one clip at a time), behind pyannote's embedding
    interface."""
    import numpy as np
    import soundfile
    import torch

    sys.path.insert(0, str(REPO / "tests" / "golden"))
    from make_campplus import import_reference
    from make_segmentation import import_pyannote, load_model

    import_pyannote()  # with torchaudio's compiled extension stubbed out
    from pyannote.audio.pipelines import SpeakerDiarization

    CAMPPlus, FBank = import_reference(SPEAKERLAB)
    campplus = CAMPPlus(feat_dim=80, embedding_size=192)
    campplus.load_state_dict(torch.load(CAMPLUS, map_location="cpu", weights_only=True))
    campplus.eval()
    fbank = FBank(80, 16000, mean_nor=True)

    class CamPlusPlusInference:
        """pyannote's embedding interface: (waveforms [B, 1, n], masks [B, frames]) -> [B, 192],
        NaN where the mask keeps too little audio."""

        sample_rate, dimension, metric, min_num_samples = 16000, 192, "cosine", 400

        def to(self, device):
            return self

        @torch.inference_mode()
        def __call__(self, waveforms, masks):
            out = np.full((len(waveforms), 192), np.nan, np.float32)
            for row, (waveform, mask) in enumerate(zip(waveforms[:, 0], masks)):
                keep = mask.repeat_interleave(-(-len(waveform) // len(mask)))[: len(waveform)]
                clip = waveform[keep > 0.5]
                if len(clip) >= self.min_num_samples:
                    out[row] = campplus(fbank(clip)[None])[0].numpy()
            return out

    segmentation = load_model(SEGMENTATION)
    pipeline = SpeakerDiarization(
        segmentation=segmentation,
        embedding=segmentation,  # a placeholder for the constructor, replaced below
        embedding_exclude_overlap=True,
        clustering="AgglomerativeClustering",
    )
    pipeline._embedding = CamPlusPlusInference()
    pipeline.instantiate(
        {
            "segmentation": {"min_duration_off": 0.0},
            "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": threshold},
        }
    )

    def run(path: str):
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        waveform = {"waveform": torch.from_numpy(samples.T.copy()), "sample_rate": rate}
        annotation = pipeline(waveform)
        return [(s.start, s.end, str(k)) for s, _, k in annotation.itertracks(yield_label=True)]

    return run


def _annotation(turns, uri: str):
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for track, (start, end, speaker) in enumerate(turns):
        annotation[Segment(start, end), track] = speaker
    return annotation


def _rttm(path: str) -> list[tuple[float, float, str]]:
    turns = []
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append((start, start + duration, fields[7]))
    return turns


def _uem(path: str | None):
    from pyannote.core import Segment, Timeline

    if not path:
        return None
    spans = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    return Timeline([Segment(float(f[2]), float(f[3])) for f in spans])


def score(files: list[dict], turns: dict[str, list], collar: float):
    """Pooled DER, each file's DER, and each file's (reference, found) speaker counts."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    per_file, counts = {}, {}
    for row in files:
        uri = Path(row["path"]).stem
        reference = _annotation(_rttm(row["rttm"]), uri)
        hypothesis = _annotation(turns[row["path"]], uri)
        uem = _uem(row["uem"])
        per_file[uri] = metric(reference, hypothesis, uem=uem)
        if uem is not None:
            reference, hypothesis = reference.crop(uem), hypothesis.crop(uem)
        counts[uri] = (len(reference.labels()), len(hypothesis.labels()))
    return abs(metric), per_file, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=SYSTEMS)
    parser.add_argument("--files", nargs="*")
    parser.add_argument("--systems", default="polyasr,mean-mel")
    parser.add_argument("--pyannote", type=Path, help="python of the pyannote.audio venv")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--audio", nargs="*", type=Path)
    parser.add_argument("--rttm", nargs="*", type=Path)
    parser.add_argument("--per-file", action="store_true")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=JSON",
        help="DiarizeOptions fields for the polyasr systems, e.g. --set embed_every=2",
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.files, args.threshold, args.threads, args.set)
        return
    raise SystemExit(run_all(args))


def run_all(args) -> int:
    files = recordings(args)
    audio_s = sum(_duration(row["path"]) for row in files)
    rows, per_file_rows = [], {}
    for system in args.systems.split(","):
        python = str(args.pyannote) if system == "pyannote" else sys.executable
        if system == "pyannote" and not args.pyannote:
            print("pyannote: skipped (give --pyannote PATH/TO/python of its venv)")
            continue
        threshold = args.threshold if args.threshold is not None else DEFAULT_THRESHOLD[system]
        cmd = [python, __file__, "--worker", system, "--threshold", str(threshold)]
        cmd += ["--threads", str(args.threads), "--set", *args.set]
        cmd += ["--files", *[row["path"] for row in files]]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(REPO / "src")}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT)]
        if not lines:
            print(f"{system}: failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        result = json.loads(lines[-1][len(RESULT) :])
        plain, files_plain, counts = score(files, result["turns"], 0.0)
        collared, files_collared, _ = score(files, result["turns"], 0.25)
        rows.append(
            [
                system,
                f"{threshold:g}",
                f"{100 * plain:.1f}",
                f"{100 * collared:.1f}",
                f"{sum(a == b for a, b in counts.values())}/{len(counts)}",
                f"{result['seconds'] * 3600 / audio_s:.0f}",
                f"{result['seconds'] / audio_s:.3f}",
                f"{result['load_s']:.1f}",
            ]
        )
        per_file_rows[system] = {
            uri: f"{100 * files_plain[uri]:.1f} / {100 * files_collared[uri]:.1f} "
            f"({counts[uri][1]} of {counts[uri][0]})"
            for uri in files_plain
        }
    header = ["system", "threshold", "DER %", "DER % (collar 0.25)", "count right"]
    header += ["s per hour", "RTF", "load s"]
    print(
        f"{len(files)} recordings, {audio_s:.0f} s; pooled DER, overlap scored; "
        f"{args.threads} threads"
    )
    print(table(header, rows, left=1))
    if args.per_file:
        uris = [Path(row["path"]).stem for row in files]
        lines = [[uri] + [per_file_rows[s][uri] for s in per_file_rows] for uri in uris]
        print()
        print("per file: DER % with no collar / 0.25 s collar (speakers found of reference)")
        print(table(["file", *per_file_rows], lines, left=1))
    return 0


def _duration(path: str) -> float:
    from polyasr.audio import load_audio

    return load_audio(path).duration


if __name__ == "__main__":
    main()
