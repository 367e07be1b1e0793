"""Generate the CAM++ golden fixture `tests/golden/campplus/` with 3D-Speaker's own code.

Real weights (`$POLYASR_SHARED/models/campplus-zh-en-common/campplus_cn_en_common.pt`, not
copied into the repository), real speech: eight clips of 1 to 10 s cut from
`$POLYASR_SHARED/data` (six speakers; two clips of one speaker of the pyannote sample, two of
the AMI excerpt), each decoded from 16-bit FLAC as int16 / 32768 (float32). For every clip the
reference computes, as 3D-Speaker's `infer_sv.py` and diarization do:

    feats = FBank(80, 16000, mean_nor=True)(wav)     # torchaudio.compliance.kaldi.fbank
    embedding = CAMPPlus(feat_dim=80, embedding_size=192)(feats.unsqueeze(0))

one clip at a time, CPU, fp32. Stored: the embeddings of all clips, and the fbank (before and
after mean normalization) of three of them; the clips themselves are not stored, only where
they come from and the SHA-256 of their samples (the tests cut them again and check it).

Reference environment (git-ignored, never committed), from the repository root:

    python3 -m venv .ref-venv-campplus
    .ref-venv-campplus/bin/pip install torch==2.13.0                # the CPU build
    .ref-venv-campplus/bin/pip install numpy scipy pyyaml av torch==2.13.0
    .ref-venv-campplus/bin/pip install --no-deps torchaudio==2.8.0
    # 3D-Speaker's code at THREED_SPEAKER_COMMIT (Apache-2.0): the `speakerlab` folder of
    # github.com/modelscope/3D-Speaker, e.g.
    #   git -C 3D-Speaker archive 09e7806 speakerlab | tar -x -C .ref-venv-campplus/src

Regenerate (the folder holding `speakerlab/` is an argument; this is the default):

    .ref-venv-campplus/bin/python tests/golden/make_campplus.py --speakerlab .ref-venv-campplus/src

torchaudio 2.8.0's compiled extension does not load against torch 2.13.0; only its pure-Python
`compliance.kaldi` module is used, so a stub `torchaudio._extension` is registered before the
import when the real one fails (see `import_reference`). `speakerlab.process.processor` imports
scipy and pyyaml through its augmentation and file helpers, hence those two packages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch

THREED_SPEAKER_COMMIT = "09e7806729ed412d3f216316a552a30c8e9e37fa"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
WEIGHTS = ("models", "campplus-zh-en-common", "campplus_cn_en_common.pt")
OUT = HERE / "campplus"
SAMPLE_RATE = 16000

# (file under $POLYASR_SHARED/data, start in seconds, length in samples, speaker); the
# pyannote and AMI times lie inside one speaker's turn of the file's RTTM, away from overlap.
CLIPS = [
    ("diarization/pyannote_sample.flac", 11.10, 52800, "pyannote:speaker90"),  # 3.3 s
    ("diarization/pyannote_sample.flac", 18.60, 44800, "pyannote:speaker90"),  # 2.8 s
    ("diarization/pyannote_sample.flac", 22.00, 92800, "pyannote:speaker91"),  # 5.8 s
    ("en/jfk.16k.flac", 0.30, 160000, "jfk"),  # 10 s
    ("en/librispeech_61-70968-0000.flac", 1.00, 16000, "librispeech:61"),  # 1 s
    ("diarization/ami_debug_dev00.flac", 2.00, 24000, "ami_dev00:MEE009"),  # 1.5 s
    ("diarization/ami_debug_dev00.flac", 13.20, 59200, "ami_dev00:MEE012"),  # 3.7 s
    ("en/ljspeech_LJ050-0131.16k.flac", 0.50, 19753, "ljspeech:LJ"),  # 1.2346 s
]
FEATURE_CLIPS = [4, 5, 7]
"""Clips whose fbank is stored too (short ones, to keep the fixture small)."""


def stub_torchaudio_extension() -> None:
    """Register a stand-in for torchaudio's compiled extension (its 2.8.0 build does not load
    against torch 2.13.0) so that its pure-Python modules import."""
    for name in [m for m in sys.modules if m.startswith("torchaudio")]:
        del sys.modules[name]
    stub = types.ModuleType("torchaudio._extension")
    stub._IS_TORCHAUDIO_EXT_AVAILABLE = False
    stub._IS_ALIGN_AVAILABLE = False
    stub._IS_RIR_AVAILABLE = False
    stub.fail_if_no_align = lambda func: func
    stub.fail_if_no_rir = lambda func: func
    stub._load_lib = lambda *args, **kwargs: False
    stub.lazy_import_sox_ext = lambda: types.SimpleNamespace(is_available=lambda: False)
    sys.modules["torchaudio._extension"] = stub


def import_reference(speakerlab: Path | None = None):
    """3D-Speaker's `CAMPPlus` and `FBank` (from `speakerlab` in the given folder, or on the
    path already)."""
    if speakerlab is not None:
        sys.path.insert(0, str(Path(speakerlab).resolve()))
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):
        stub_torchaudio_extension()
        import torchaudio  # noqa: F401
    from speakerlab.models.campplus.DTDNN import CAMPPlus
    from speakerlab.process.processor import FBank

    return CAMPPlus, FBank


def read_flac(path: Path) -> np.ndarray:
    """Mono 16 kHz 16-bit FLAC -> float32 int16 / 32768."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.sample_rate == SAMPLE_RATE, path
        assert stream.codec_context.format.name in ("s16", "s16p"), path
        assert stream.codec_context.channels == 1, path
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def clip_samples(audio: np.ndarray, start: float, length: int) -> np.ndarray:
    first = round(start * SAMPLE_RATE)
    clip = audio[first : first + length]
    assert len(clip) == length
    return np.ascontiguousarray(clip)


def sha256(clip: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(clip, dtype="<f4").tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speakerlab", type=Path, default=REPO / ".ref-venv-campplus" / "src")
    args = parser.parse_args()
    torch.set_num_threads(2)
    CAMPPlus, FBank = import_reference(args.speakerlab)
    import torchaudio.compliance.kaldi as kaldi

    weights = SHARED.joinpath(*WEIGHTS)
    model = CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    fbank = FBank(80, SAMPLE_RATE, mean_nor=True)

    arrays: dict[str, np.ndarray] = {}
    clips_json, embeddings = [], []
    decoded: dict[str, np.ndarray] = {}
    for i, (name, start, length, speaker) in enumerate(CLIPS):
        if name not in decoded:
            decoded[name] = read_flac(SHARED / "data" / name)
        clip = clip_samples(decoded[name], start, length)
        wav = torch.from_numpy(clip)
        with torch.inference_mode():
            feats = fbank(wav)  # [T, 80], mean-normalized
            embeddings.append(model(feats.unsqueeze(0))[0].numpy())
            if i in FEATURE_CLIPS:
                raw = kaldi.fbank(
                    wav[None], num_mel_bins=80, sample_frequency=SAMPLE_RATE, dither=0
                )
                arrays[f"fbank_raw_{i}"] = raw.numpy()
                arrays[f"fbank_{i}"] = feats.numpy()
        clips_json.append(
            {
                "file": name,
                "start_s": start,
                "samples": length,
                "speaker": speaker,
                "frames": int(feats.shape[0]),
                "sha256_float32": sha256(clip),
            }
        )
    arrays["embeddings"] = np.stack(embeddings)
    unit = arrays["embeddings"] / np.linalg.norm(arrays["embeddings"], axis=1, keepdims=True)

    OUT.mkdir(exist_ok=True)
    np.savez_compressed(OUT / "reference.npz", **arrays)
    import torchaudio

    meta = {
        "what": "3D-Speaker CAMPPlus (campplus_cn_en_common.pt) fbank and embeddings, CPU fp32",
        "weights": "/".join(WEIGHTS),
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "threed_speaker_commit": THREED_SPEAKER_COMMIT,
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "numpy": np.__version__,
        "fbank": "FBank(80, 16000, mean_nor=True): kaldi.fbank(num_mel_bins=80, dither=0) - mean",
        "clips": clips_json,
        "feature_clips": FEATURE_CLIPS,
        "cosine": np.round(unit @ unit.T, 6).tolist(),
        "regenerate": ".ref-venv-campplus/bin/python tests/golden/make_campplus.py "
        "--speakerlab .ref-venv-campplus/src",
    }
    (OUT / "reference.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(CLIPS)} clips, fbank of {FEATURE_CLIPS}")


if __name__ == "__main__":
    main()
