"""Generate the pyannote segmentation-3.0 parity fixture `pyannote-segmentation/`.

pyannote.audio 3.3.2 loads the real segmentation-3.0 checkpoint with its own
`Model.from_pretrained` and runs it (CPU, fp32, `torch.inference_mode`, as its `Inference` does)
on a batch of 10 s windows of real speech cut from `$POLYASR_SHARED/data/diarization`: two-speaker
and three-speaker meeting excerpts with overlapped speech, and a zero-padded last chunk (7 s of
audio, the way `Inference.slide` pads the end of a file). Saved next to this script:

- `pyannote-segmentation/windows.npz`: `samples` int16 [windows, 160000] (the 16-bit PCM
  values; the model input is samples / 32768 as float32, shaped [windows, 1, 160000]);
- `pyannote-segmentation/reference.npz`: `log_probs` float32 [windows, 589, 7] (the model
  output for the whole batch), `multilabel` uint8 [windows, 589, 3]
  (`Powerset(3, 2).to_multilabel(log_probs)`, the hard conversion pyannote's `Inference`
  applies);
- `pyannote-segmentation/reference.json`: the windows' sources, versions, the checkpoint's
  SHA-256, frame timing (`model.receptive_field`, `model.num_frames`), the powerset mapping,
  and pyannote's own batch-vs-single difference and smallest top-2 margin.

The real weights are not copied: tests read them from `$POLYASR_SHARED/models`.

Reference environment (git-ignored, never committed), from the repository root:

    python3 -m venv .ref-venv-pyannote
    R=.ref-venv-pyannote/bin/pip
    $R install torch==2.13.0                                  # the CPU build
    $R install --no-deps torchaudio==2.8.0 pyannote.audio==3.3.2 speechbrain \
        torch_audiomentations torch-pitch-shift
    $R install torch==2.13.0 asteroid-filterbanks einops huggingface_hub lightning omegaconf \
        pyannote.core pyannote.database pyannote.metrics pyannote.pipeline \
        pytorch_metric_learning rich semver soundfile tensorboardX torchmetrics hyperpyyaml \
        joblib numpy packaging scipy sentencepiece tqdm julius primePy requests

Regenerate (from the repository root; POLYASR_SHARED defaults to ../shared):

    .ref-venv-pyannote/bin/python tests/golden/make_segmentation.py

torchaudio 2.8.0's compiled extension does not load against torch 2.13.0 (and is a CUDA build);
pyannote only imports torchaudio here, so a stub `torchaudio._extension` is registered before the
import (`import_pyannote`). Audio is read with soundfile (16-bit PCM / 32768, the values
torchaudio.load gives). torch 2.6+ loads checkpoints with `weights_only=True`: the checkpoint's
four non-tensor classes (TorchVersion and pyannote's task description) are allowed with
`torch.serialization.add_safe_globals`, after the file's SHA-256 is checked against the official
one.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
CHECKPOINT = SHARED / "models" / "pyannote-segmentation-3.0" / "pytorch_model.bin"
SHA256 = "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"
OUT = HERE / "pyannote-segmentation"
SAMPLE_RATE = 16000
WINDOW = 10 * SAMPLE_RATE
# (recording in data/diarization, start s, seconds of audio; shorter ones are zero-padded)
WINDOWS = [
    ("pyannote_sample", 10.0, 10.0),  # 2 speakers, ~11 % overlapped speech
    ("ami_debug_trn00", 15.0, 10.0),  # 3 speakers, ~24 % overlapped speech
    ("ami_debug_dev01", 10.0, 10.0),  # 2 speakers, ~12 % overlapped, pauses
    ("ami_debug_trn02", 20.0, 7.0),  # one short utterance, silence, then 3 s of zero padding
]
FRAME_SIZES = [160000, 159999, 80000, 48000, 16000, 991, 990]
REGEN_COMMAND = ".ref-venv-pyannote/bin/python tests/golden/make_segmentation.py"


def import_pyannote():
    """pyannote.audio with torchaudio's compiled extension stubbed out."""
    from make_campplus import stub_torchaudio_extension

    stub_torchaudio_extension()
    import torchaudio  # noqa: F401
    from pyannote.audio import Model
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from torch.torch_version import TorchVersion

    torch.serialization.add_safe_globals([TorchVersion, Specifications, Problem, Resolution])
    return Model


def load_model(path: Path = CHECKPOINT):
    """pyannote's own model from the official checkpoint (SHA-256 checked first)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{path}: SHA-256 {digest} is not the official file's {SHA256}")
    model = import_pyannote().from_pretrained(str(path), map_location="cpu")
    return model.eval()


def read_window(name: str, start: float, seconds: float) -> np.ndarray:
    import soundfile as sf

    path = SHARED / "data" / "diarization" / f"{name}.flac"
    samples, rate = sf.read(path, dtype="int16")
    assert rate == SAMPLE_RATE and samples.ndim == 1, (path, rate, samples.shape)
    begin = round(start * SAMPLE_RATE)
    piece = samples[begin : begin + round(seconds * SAMPLE_RATE)]
    return np.pad(piece, (0, WINDOW - len(piece)))


def main() -> None:
    torch.set_num_threads(1)
    model = load_model()
    from pyannote.audio.utils.powerset import Powerset

    samples = np.stack([read_window(*w) for w in WINDOWS])
    specs = model.specifications
    # what pyannote's Inference converts a powerset model's output with
    powerset = Powerset(len(specs.classes), specs.powerset_max_classes)
    waveforms = torch.from_numpy(samples.astype(np.float32) / 32768.0)[:, None]
    with torch.inference_mode():
        log_probs = model(waveforms)
        singles = torch.cat([model(w[None]) for w in waveforms])
        multilabel = powerset.to_multilabel(log_probs)
    top2 = log_probs.topk(2, dim=-1).values
    margin = (top2[..., 0] - top2[..., 1]).min().item()
    field = model.receptive_field
    classes = log_probs.argmax(-1)
    reference = {
        "what": "pyannote.audio 3.3.2 Model.from_pretrained(segmentation-3.0) on CPU fp32",
        "regenerate": REGEN_COMMAND,
        "checkpoint": "models/pyannote-segmentation-3.0/pytorch_model.bin",
        "checkpoint_sha256": SHA256,
        "windows": [
            {
                "file": f"data/diarization/{name}.flac",
                "start_s": start,
                "audio_s": seconds,
                "padded_s": (WINDOW - round(seconds * SAMPLE_RATE)) / SAMPLE_RATE,
            }
            for name, start, seconds in WINDOWS
        ],
        "input": "windows.npz samples int16 / 32768 as float32, shape [windows, 1, 160000]",
        "frames": int(log_probs.shape[1]),
        "num_frames": {str(n): int(model.num_frames(n)) for n in FRAME_SIZES},
        "receptive_field": {"start": field.start, "duration": field.duration, "step": field.step},
        "powerset_mapping": powerset.mapping.int().tolist(),
        "class_counts": np.bincount(classes.flatten().numpy(), minlength=7).tolist(),
        "pyannote_batch_vs_single_max_abs": (log_probs - singles).abs().max().item(),
        "min_top2_margin": margin,
        "torch_threads": 1,
        "versions": {
            name: version(name)
            for name in ("pyannote.audio", "torch", "torchaudio", "asteroid-filterbanks", "numpy")
        }
        | {"python": platform.python_version()},
    }
    OUT.mkdir(exist_ok=True)
    np.savez_compressed(OUT / "windows.npz", samples=samples)
    np.savez_compressed(
        OUT / "reference.npz",
        log_probs=log_probs.numpy(),
        multilabel=multilabel.numpy().astype(np.uint8),
    )
    (OUT / "reference.json").write_text(json.dumps(reference, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: reference[k] for k in ("class_counts", "min_top2_margin")}))
    print(f"pyannote batch vs single: {reference['pyannote_batch_vs_single_max_abs']:.2e}")


if __name__ == "__main__":
    main()
