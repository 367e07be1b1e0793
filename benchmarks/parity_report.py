"""Print the measured parity errors against every golden fixture (Whisper, GigaAM, Parakeet).

    python benchmarks/parity_report.py

The tests assert the tolerances; this prints the actual maximum errors for reports.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

import polyasr
from polyasr.audio.features import WHISPER_80, WHISPER_128, FeatureConfig, log_mel
from polyasr.models.whisper.decoding import DecodeConfig, decode_windows

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))


def max_abs(actual, expected) -> float:
    return float(np.abs(np.asarray(actual) - expected).max())


@torch.inference_mode()
def whisper_report(name: str, features: FeatureConfig) -> dict[str, object]:
    directory = SHARED / "golden" / name
    ref, inputs = np.load(directory / "reference.npz"), np.load(directory / "inputs.npz")
    audio = np.zeros(480000, np.float32)
    audio[: len(inputs["audio"])] = inputs["audio"]
    model = polyasr.load(directory, device="cpu", dtype="float32").recognizer
    w = model.model
    mel = torch.from_numpy(ref["features"])[None]
    states = w.encoder(mel)
    cache = w.new_cache(1)
    w.decoder.set_audio(cache, states)
    hidden, scores = w.decoder(torch.from_numpy(ref["prompt_ids"])[None], cache, True)
    attention = torch.stack([scores[layer][0, h].softmax(-1) for layer, h in w.alignment_heads])
    report: dict[str, object] = {
        "features": max_abs(log_mel(audio, features), ref["features"]),
        "encoder_embed": max_abs(w.encoder.embed(mel)[0], ref["encoder_embed"]),
        "encoder_out": max_abs(states[0], ref["encoder_out"]),
        "decoder_hidden": max_abs(hidden[0], ref["decoder_hidden"]),
        "logits": max_abs(w.decoder.logits(hidden)[0], ref["logits"]),
        "alignment_cross_attn": max_abs(attention, ref["alignment_cross_attn"]),
    }
    for timestamps, suffix in ((False, ""), (True, "_timestamps")):
        config = DecodeConfig(
            sample_len=20, timestamps=timestamps, suppress_tokens=model.suppress_tokens
        )
        prompt = ref["prompt_ids" + suffix].tolist()[: 4 - int(timestamps)]
        result = decode_windows(w, model.tokenizer, states, prompt, config)[0]
        report["greedy" + suffix] = result.tokens == ref["greedy_tokens" + suffix].tolist()
    return report


@torch.inference_mode()
def gigaam_report(name: str) -> dict[str, object]:
    directory = REPO / "tests" / "golden" / name
    ref, inputs = np.load(directory / "reference.npz"), np.load(directory / "inputs.npz")
    model = polyasr.load(directory, device="cpu").recognizer
    report: dict[str, object] = {}
    for i in (0, 1):
        audio = inputs[f"audio_{i}"]
        feats = model.log_mel(torch.from_numpy(audio))
        report[f"features_{i}"] = max_abs(feats, ref[f"features_{i}"])
        states, _ = model.encode([audio])
        expected = ref[f"encoder_out_{i}"]
        report[f"encoder_rel_{i}"] = max_abs(states[0], expected) / float(np.abs(expected).max())
        if model.model.head_type == "ctc":
            report[f"log_probs_{i}"] = max_abs(model.model.head(states)[0], ref[f"log_probs_{i}"])
        tokens, frames, _ = model.recognize([audio])[0]
        same = tokens == ref[f"tokens_{i}"].tolist() and frames == ref[f"token_frames_{i}"].tolist()
        report[f"tokens_and_frames_{i}"] = same
    batch, lengths = model.encode([inputs["audio_0"], inputs["audio_1"]])
    report["batch_encoder"] = max(
        max_abs(batch[i, : int(n)], ref["batch_encoder_out"][i, : int(n)])
        for i, n in enumerate(lengths)
    )
    return report


@torch.inference_mode()
def parakeet_report(name: str) -> dict[str, object]:
    import json
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from test_parakeet_golden import joint_along_reference_path

    from polyasr.models.parakeet.decoding import tdt_greedy

    directory = REPO / "tests" / "golden" / name
    arrays = np.load(directory / "reference.npz")
    ref = json.loads((directory / "reference.json").read_text(encoding="utf-8"))
    model = polyasr.load(directory, device="cpu").recognizer
    report: dict[str, object] = {}
    for lang, utterance in ref["utterances"].items():
        audio = arrays[f"{lang}_audio"]
        report[f"features_{lang}"] = max_abs(
            model.log_mel(torch.from_numpy(audio)), arrays[f"{lang}_features"]
        )
        states, lengths = model.encode([audio])
        report[f"encoder_{lang}"] = max_abs(states[0], arrays[f"{lang}_encoder_out"])
        report[f"joint_{lang}"] = max_abs(
            joint_along_reference_path(model, arrays, ref, lang), arrays[f"{lang}_joint_logits"]
        )
        spans = tdt_greedy(model.model, states, lengths)[0]
        decisions = [[s.start, s.id, s.end - s.start] for s in spans]
        report[f"decisions_{lang}"] = decisions == utterance["decisions"]
    return report


def show(name: str, report: dict[str, object]) -> None:
    cells = [f"{k} {v:.2e}" if isinstance(v, float) else f"{k} {v}" for k, v in report.items()]
    print(f"{name}: " + ", ".join(cells))


def main() -> None:
    torch.set_num_threads(2)
    show("whisper-tiny-80", whisper_report("whisper-tiny-80", WHISPER_80))
    show("whisper-tiny-128", whisper_report("whisper-tiny-128", WHISPER_128))
    show("gigaam-v3-ctc", gigaam_report("gigaam-v3-ctc"))
    show("gigaam-v3-e2e-rnnt", gigaam_report("gigaam-v3-e2e-rnnt"))
    show("parakeet-tdt-tiny", parakeet_report("parakeet-tdt-tiny"))


if __name__ == "__main__":
    main()
