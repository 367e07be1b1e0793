"""Whisper on a CUDA GPU: golden parity at fp32/fp16 and real-size timings.

Needs only torch, numpy, safetensors and tokenizers (no audio decoding), so it runs on a bare
GPU machine with `PYTHONPATH=src`:

    python benchmarks/whisper_gpu.py --golden ../shared/golden

Prints, per golden fixture and dtype, the max abs error of the encoder output and the
teacher-forced logits and whether the greedy tokens are identical; then, for real-size
configurations with random weights, the encoder time per 30 s window and the decoder time per
generated token (KV cache, batch 1).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from benchlib import table

import polyasr
from polyasr.models.blocks import sinusoids
from polyasr.models.whisper.decoding import DecodeConfig, decode_windows
from polyasr.models.whisper.model import Whisper, WhisperDims

REAL_SIZES = {
    "base": WhisperDims(80, 51865, 512, 6, 6, 8, 8, 2048, 2048),
    "large-v3": WhisperDims(128, 51866, 1280, 32, 32, 20, 20, 5120, 5120),
    "large-v3-turbo": WhisperDims(128, 51866, 1280, 32, 4, 20, 20, 5120, 5120),
}


def parity(directory: Path, dtype: torch.dtype) -> list[str]:
    model = polyasr.load(directory, device="cuda", dtype=dtype).recognizer
    ref = np.load(directory / "reference.npz")
    w = model.model
    feats = torch.from_numpy(ref["features"])[None].to("cuda", dtype)
    with torch.inference_mode():
        states = w.encoder(feats)
        cache = w.new_cache(1)
        w.decoder.set_audio(cache, states)
        hidden, _ = w.decoder(torch.from_numpy(ref["prompt_ids"])[None].cuda(), cache)
        logits = w.decoder.logits(hidden)[0]
    enc_err = (states[0].float().cpu() - torch.from_numpy(ref["encoder_out"])).abs().max().item()
    log_err = (logits.cpu() - torch.from_numpy(ref["logits"])).abs().max().item()
    config = DecodeConfig(sample_len=20, timestamps=False, suppress_tokens=model.suppress_tokens)
    tokens = decode_windows(w, model.tokenizer, states, ref["prompt_ids"].tolist()[:4], config)[
        0
    ].tokens
    same = tokens == ref["greedy_tokens"].tolist()
    return [
        directory.name,
        str(dtype).replace("torch.", ""),
        f"{enc_err:.2e}",
        f"{log_err:.2e}",
        str(same),
    ]


def timing(name: str, dims: WhisperDims, dtype: torch.dtype, steps: int = 100) -> list[str]:
    torch.manual_seed(0)
    model = Whisper(dims)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    model.encoder.embed_positions.weight.copy_(sinusoids(dims.n_audio_ctx, dims.d_model))
    model = model.to("cuda", dtype).eval()
    mel = torch.randn(1, dims.n_mels, 3000, device="cuda", dtype=dtype)

    def encode():
        return model.encoder(mel)

    with torch.inference_mode():
        for _ in range(3):
            states = encode()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            states = encode()
        torch.cuda.synchronize()
        enc_ms = (time.perf_counter() - t) / 10 * 1e3
        cache = model.new_cache(1)
        model.decoder.set_audio(cache, states)
        model.decoder(torch.tensor([[50258, 50259, 50360]], device="cuda"), cache)
        token = torch.tensor([[1000]], device="cuda")
        for _ in range(5):  # warm-up: kernel selection for the first shapes
            model.decoder(token, cache)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            hidden, _ = model.decoder(token, cache)
            token = model.decoder.logits(hidden[:, -1]).argmax(-1, keepdim=True)
        torch.cuda.synchronize()
        dec_ms = (time.perf_counter() - t) / steps * 1e3
    return [name, str(dtype).replace("torch.", ""), f"{enc_ms:.1f}", f"{dec_ms:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--golden", type=Path, required=True, help="folder with whisper-tiny-* fixtures"
    )
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    # cuDNN convolutions use TF32 by default, which is not float32 parity.
    torch.backends.cudnn.allow_tf32 = False
    rows = [
        parity(d, dt)
        for d in sorted(args.golden.glob("whisper-tiny-*"))
        for dt in (torch.float32, torch.float16)
    ]
    print(
        table(["fixture", "dtype", "encoder max abs", "logits max abs", "greedy identical"], rows)
    )
    rows = [
        timing(n, d, dt) for n, d in REAL_SIZES.items() for dt in (torch.float32, torch.float16)
    ]
    print()
    print(
        table(
            ["model (random weights)", "dtype", "encoder ms / 30 s window", "decoder ms / token"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
