"""Regenerate the hard-speech test set in tests/data/hard/ (quiet, whispered, falsetto English).

The dev set in $POLYASR_SHARED/data has none of these conditions. Every file here is derived
from a dev recording (so its reference transcript is the dev reference) or synthesised with
espeak-ng; nothing is downloaded. Output: 16 kHz mono 16-bit FLAC + manifest.jsonl.

    quiet      the dev recording attenuated by 35-40 dB (then 16-bit quantised, as a quiet
               recording would be stored)
    whispered  WORLD vocoder analysis of the dev recording, resynthesised with noise excitation
               only (F0 = 0 everywhere: no voicing), i.e. an LPC-style "excitation replaced by
               noise" whisper with the speaker's own spectral envelope; plus espeak-ng's
               `whisper` voice variant
    falsetto   WORLD resynthesis with F0 raised by an octave and the spectral envelope (the
               formants) kept; plus espeak-ng at its highest pitch

Deterministic: fixed seeds, fixed sources. Needs numpy, soundfile, soxr, pyworld (WORLD) and
the espeak-ng binary (Debian package `espeak-ng`, tested with 1.51):

    python3 -m venv .gen-venv && .gen-venv/bin/pip install numpy soundfile soxr pyworld
    apt-get install -y espeak-ng
    .gen-venv/bin/python tests/data/make_hard_speech.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyworld
import soundfile as sf
import soxr

RATE = 16000
HERE = Path(__file__).resolve().parent
OUT = HERE / "hard"
REPO = HERE.parent.parent
DEFAULT_SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))

# (output name, kind, method, source path in the dev manifest or None, parameter, text or None)
FILES = [
    ("quiet_picovoice_m35db", "quiet", "attenuate", "en/picovoice_test_en.flac", 35.0, None),
    (
        "quiet_librivox0870_m40db",
        "quiet",
        "attenuate",
        "en/librivox_sense_and_sensibility_01_austen_64kb-0870.flac",
        40.0,
        None,
    ),
    ("quiet_mfa_surround_m35db", "quiet", "attenuate", "en/mfa_surround.flac", 35.0, None),
    (
        "whispered_librispeech61",
        "whispered",
        "world_whisper",
        "en/librispeech_61-70968-0000.flac",
        -30.0,
        None,
    ),
    (
        "whispered_ljspeech",
        "whispered",
        "world_whisper",
        "en/ljspeech_LJ050-0131.flac",
        -30.0,
        None,
    ),
    (
        "whispered_librivox0890",
        "whispered",
        "world_whisper",
        "en/librivox_sense_and_sensibility_01_austen_64kb-0890.flac",
        -30.0,
        None,
    ),
    (
        "whispered_espeak",
        "whispered",
        "espeak_whisper",
        None,
        None,
        "Please close the window before you leave the office tonight.",
    ),
    (
        "falsetto_librispeech2412",
        "falsetto",
        "world_octave_up",
        "en/librispeech_2412-153948-0000.flac",
        2.0,
        None,
    ),
    ("falsetto_jfk", "falsetto", "world_octave_up", "en/jfk.flac", 2.0, None),
    (
        "falsetto_librivox0880",
        "falsetto",
        "world_octave_up",
        "en/librivox_sense_and_sensibility_01_austen_64kb-0880.flac",
        2.0,
        None,
    ),
    (
        "falsetto_espeak",
        "falsetto",
        "espeak_high",
        None,
        None,
        "The quick brown fox jumps over the lazy dog near the old red barn.",
    ),
]


def read_dev(shared: Path, entry: dict) -> np.ndarray:
    """The dev recording as 16 kHz mono float64 (its 16 kHz copy when the original is not)."""
    path = shared / "data" / (entry.get("path_16k") or entry["path"])
    samples, rate = sf.read(path, dtype="float64", always_2d=True)
    samples = samples.mean(axis=1)
    if rate != RATE:
        samples = soxr.resample(samples, rate, RATE, quality="VHQ")
    return samples


def rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12)


def to_level(x: np.ndarray, target_db: float) -> np.ndarray:
    return x * 10 ** ((target_db - rms_db(x)) / 20)


def world(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f0, t = pyworld.harvest(x, RATE, frame_period=5.0)
    sp = pyworld.cheaptrick(x, f0, t, RATE)
    ap = pyworld.d4c(x, f0, t, RATE)
    return f0, sp, ap


def world_whisper(x: np.ndarray, level_db: float, seed: int) -> np.ndarray:
    """No voicing at all: every frame is noise shaped by the speaker's spectral envelope.

    WORLD's unvoiced excitation draws from C rand(); to keep the result independent of the
    library's random state, the noise is made here: white noise filtered frame by frame
    through the envelope (overlap-add, 5 ms hop, 1024-point FFT)."""
    f0, sp, _ = world(x)
    rng = np.random.default_rng(seed)
    n_fft = (sp.shape[1] - 1) * 2
    hop = RATE * 5 // 1000
    window = np.hanning(n_fft)
    out = np.zeros(hop * len(sp) + n_fft)
    for i, envelope in enumerate(sp):
        noise = np.fft.rfft(rng.standard_normal(n_fft) * window)
        frame = np.fft.irfft(noise * np.sqrt(envelope), n_fft)
        out[i * hop : i * hop + n_fft] += frame * window
    out = out[n_fft // 2 : n_fft // 2 + len(x)]
    # whispering has little energy below ~300 Hz: a gentle first-order high-pass
    out = np.append(out[0], out[1:] - 0.9 * out[:-1])
    return to_level(out, level_db)


def world_octave_up(x: np.ndarray, factor: float) -> np.ndarray:
    """F0 times `factor`, spectral envelope and aperiodicity unchanged (formants kept)."""
    f0, sp, ap = world(x)
    y = pyworld.synthesize(f0 * factor, sp, ap, RATE, frame_period=5.0)[: len(x)]
    return to_level(y, rms_db(x))


def espeak(text: str, args: list[str]) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", *args, "-w", str(wav), text], check=True)
        samples, rate = sf.read(wav, dtype="float64")
    samples = soxr.resample(samples, rate, RATE, quality="VHQ") if rate != RATE else samples
    return samples


def quantise(x: np.ndarray) -> np.ndarray:
    peak = np.abs(x).max()
    if peak > 0.99:
        x = x * 0.99 / peak
    return np.round(x * 32767).astype(np.int16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    manifest = {}
    for line in (args.shared / "data" / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        manifest[entry["path"]] = entry
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed, (name, kind, method, source, param, text) in enumerate(FILES):
        if method == "attenuate":
            x = read_dev(args.shared, manifest[source])
            y = x * 10 ** (-param / 20)
            how = f"{source} attenuated by {param:g} dB, 16-bit"
        elif method == "world_whisper":
            x = read_dev(args.shared, manifest[source])
            y = world_whisper(x, param, seed)
            how = (
                f"{source}: WORLD envelope, noise-only excitation (F0=0), "
                f"pre-emphasis 0.9, RMS {param:g} dBFS"
            )
        elif method == "world_octave_up":
            x = read_dev(args.shared, manifest[source])
            y = world_octave_up(x, param)
            how = f"{source}: WORLD resynthesis, F0 x{param:g}, envelope (formants) kept"
        elif method == "espeak_whisper":
            y = to_level(espeak(text, ["-v", "en-us+whisper", "-s", "150"]), -30.0)
            how = "espeak-ng 1.51 -v en-us+whisper -s 150, RMS -30 dBFS"
        elif method == "espeak_high":
            y = to_level(espeak(text, ["-v", "en-us+f3", "-p", "99", "-s", "150"]), -22.0)
            how = "espeak-ng 1.51 -v en-us+f3 -p 99 -s 150, RMS -22 dBFS"
        else:
            raise ValueError(method)
        if text is None:
            text = manifest[source]["text"]
        samples = quantise(y)
        path = args.out / f"{name}.flac"
        sf.write(path, samples, RATE, subtype="PCM_16", format="FLAC")
        rows.append(
            {
                "path": path.name,
                "kind": kind,
                "language": "en",
                "duration_s": round(len(samples) / RATE, 3),
                "text": text,
                "source": source,
                "how": how,
            }
        )
        print(
            f"{path.name}: {kind}, {len(samples) / RATE:.1f} s, {rms_db(samples / 32768):.1f} dBFS"
        )
    with open(args.out / "manifest.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
