"""Load GigaAM v3 checkpoints (`v3_*.ckpt` + SentencePiece model) behind the `AsrModel` protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...audio import FeatureConfig
from ...audio.features import analysis_window, mel_filters
from ...checkpoint import load_pickled_checkpoint, to_plain
from ...devices import resolve_device, resolve_dtype
from ...errors import ModelError
from ...types import Segment, TranscribeOptions, Word
from ..acoustic import AcousticAsr
from .decoding import ctc_greedy, rnnt_greedy
from .model import GigaAM, GigaAMDims
from .tokenizer import GigaAMTokenizer

SAMPLE_RATE = 16000


def find_checkpoint(path: Path) -> Path | None:
    """The GigaAM checkpoint at `path`: a `.ckpt` file, the only `.ckpt` in a directory, or the
    Hugging Face copy's `pytorch_model.bin` beside a GigaAM `config.json`."""
    if path.is_file():
        return path if path.suffix == ".ckpt" else None
    found = sorted(path.glob("*.ckpt"))
    if len(found) == 1:
        return found[0]
    config = path / "config.json"
    if (path / "pytorch_model.bin").is_file() and config.is_file():
        if "gigaam" in config.read_text(encoding="utf-8", errors="replace").lower():
            return path / "pytorch_model.bin"
    return None


def is_gigaam(path: Path) -> bool:
    ckpt = find_checkpoint(path)
    return ckpt is not None and (
        ckpt.name == "pytorch_model.bin" or ckpt.name.startswith(("v3_", "gigaam"))
    )


def _hub_config(directory: Path) -> dict[str, Any]:
    """The model cfg nested in the hub copy's config.json (the dict with encoder and head)."""
    stack = [json.loads((directory / "config.json").read_text(encoding="utf-8"))]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "encoder" in node and "head" in node:
                return node
            stack.extend(node.values())
    return {}


def dims_from_config(cfg: dict[str, Any], state: dict[str, torch.Tensor], head: str) -> GigaAMDims:
    enc = cfg.get("encoder", {})
    if head == "ctc":
        num_classes = state["head.decoder_layers.0.weight"].shape[0]
        pred_hidden = joint_hidden = 0
    else:
        num_classes = state["head.joint.joint_net.1.weight"].shape[0]
        pred_hidden = state["head.decoder.embed.weight"].shape[1]
        joint_hidden = state["head.joint.enc.weight"].shape[0]
    if (
        enc.get("subsampling", "conv1d") != "conv1d"
        or enc.get("self_attention_model", "rotary") != "rotary"
    ):
        raise ModelError(
            "only GigaAM v3 checkpoints (conv1d subsampling, rotary attention) are supported"
        )
    return GigaAMDims(
        feat_in=enc.get("feat_in", 64),
        n_layers=enc.get("n_layers", 16),
        d_model=enc.get("d_model", 768),
        n_heads=enc.get("n_heads", 16),
        ff_expansion=enc.get("ff_expansion_factor", 4),
        subs_kernel=enc.get("subs_kernel_size", 5),
        conv_kernel=enc.get("conv_kernel_size", 5),
        rope_base=float(enc.get("pos_emb_max_len", 5000)),
        num_classes=num_classes,
        pred_hidden=pred_hidden,
        joint_hidden=joint_hidden,
    )


class GigaAMAsr(AcousticAsr):
    """A loaded GigaAM v3 model (CTC or RNN-T; plain or end-to-end punctuated)."""

    family = "gigaam"
    languages = ("ru",)
    max_input_seconds = 25.0

    @property
    def blank(self) -> int:
        return self.model.dims.num_classes - 1

    @torch.inference_mode()
    def recognize(self, chunks: list[np.ndarray]) -> list[tuple[list[int], list[int], int]]:
        """Token ids, their encoder frames and the encoder length for each chunk."""
        short = [i for i, c in enumerate(chunks) if len(c) < self.features.n_fft]
        padded = [
            c if len(c) >= self.features.n_fft else np.zeros(self.features.n_fft, np.float32)
            for c in chunks
        ]
        states, lengths = self.encode(padded)
        results = []
        if self.model.head_type == "ctc":
            log_probs = self.model.head(states)
            for i in range(len(chunks)):
                n = int(lengths[i])
                results.append((*ctc_greedy(log_probs[i], n, self.blank), n))
        else:
            decoded = rnnt_greedy(self.model.head, states, lengths, self.blank, self.max_symbols)
            results = [(*d, int(n)) for d, n in zip(decoded, lengths)]
        for i in short:
            results[i] = ([], [], results[i][2])
        return results

    def transcribe_chunks(
        self, chunks: list[np.ndarray], options: TranscribeOptions
    ) -> list[list[Segment]]:
        """One segment per non-empty chunk, with word times relative to the chunk start."""
        out = []
        for chunk, (tokens, frames, n_frames) in zip(chunks, self.recognize(chunks)):
            if not tokens:
                out.append([])
                continue
            shift = len(chunk) / SAMPLE_RATE / max(n_frames, 1)
            words = [
                Word(
                    start=round(frames[g[0]] * shift, 3),
                    end=round((frames[g[-1]] + 1) * shift, 3),
                    text=text,
                )
                for text, g in self.tokenizer.words(tokens)
            ]
            text = self.tokenizer.decode(tokens).strip()
            start = words[0].start if words else 0.0
            end = words[-1].end if words else len(chunk) / SAMPLE_RATE
            out.append([Segment(start=start, end=end, text=text, words=words)])
        return out


def load_gigaam(
    path: Path, device: str = "auto", dtype: Any = None, name: str | None = None
) -> GigaAMAsr:
    """Build a `GigaAMAsr` from a `.ckpt` file or a directory holding one (+ tokenizer model)."""
    ckpt_path = find_checkpoint(path)
    if ckpt_path is None:
        raise ModelError(f"no GigaAM .ckpt file found at {path}")
    data = load_pickled_checkpoint(ckpt_path)
    if ckpt_path.suffix == ".bin":  # hub copy: bare state dict under "model.", cfg in JSON
        data = {"cfg": _hub_config(ckpt_path.parent), "state_dict": data}
        data["state_dict"] = {k.removeprefix("model."): v for k, v in data["state_dict"].items()}
    if not isinstance(data, dict) or "state_dict" not in data:
        raise ModelError(f"{ckpt_path} is not a GigaAM checkpoint (no state_dict)")
    cfg = to_plain(data.get("cfg") or {})
    state = {k: v for k, v in data["state_dict"].items() if isinstance(v, torch.Tensor)}
    head = "ctc" if "head.decoder_layers.0.weight" in state else "rnnt"
    if head == "rnnt" and "head.joint.enc.weight" not in state:
        raise ModelError(f"{ckpt_path} has no CTC or RNN-T head (an SSL-only checkpoint?)")
    dims = dims_from_config(cfg, state, head)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    window = state.pop("preprocessor.featurizer.0.spectrogram.window", None)
    filters = state.pop("preprocessor.featurizer.0.mel_scale.fb", None)
    pre = cfg.get("preprocessor", {})
    features = FeatureConfig(
        sample_rate=pre.get("sample_rate", SAMPLE_RATE),
        n_fft=pre.get("n_fft", 320),
        win_length=pre.get("win_length", 320),
        hop_length=pre.get("hop_length", 160),
        n_mels=pre.get("features", dims.feat_in),
        mel_scale="htk",
        mel_norm=None,
        center=bool(pre.get("center", False)),
        log="ln",
        log_eps=1e-9,
        log_max=1e9,
    )
    window = (window if window is not None else analysis_window(features)).float().to(dev)
    filters = (filters.T if filters is not None else mel_filters(features)).float().to(dev)
    with torch.device("meta"):
        model = GigaAM(dims, head)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ModelError(
            f"{ckpt_path} does not match GigaAM v3: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    model.load_state_dict({k: v.to(dev, torch_dtype) for k, v in state.items()}, assign=True)
    model.eval().requires_grad_(False)
    decoding = cfg.get("decoding", {})
    sp_files = sorted(ckpt_path.parent.glob(f"{ckpt_path.stem}_tokenizer.model")) or sorted(
        ckpt_path.parent.glob("*tokenizer.model")
    )
    if decoding.get("vocabulary"):
        tokenizer = GigaAMTokenizer(vocabulary=list(decoding["vocabulary"]))
    elif sp_files:
        tokenizer = GigaAMTokenizer(sp_model=sp_files[0])
    else:
        raise ModelError(
            f"the SentencePiece tokenizer model for {ckpt_path.name} is missing beside it"
        )
    if len(tokenizer) != dims.num_classes - 1:
        raise ModelError(
            f"tokenizer has {len(tokenizer)} tokens, the head {dims.num_classes - 1} (+ blank)"
        )
    max_symbols = int(decoding.get("max_symbols_per_step") or 10)
    return GigaAMAsr(
        model, tokenizer, features, filters, window, name or ckpt_path.stem, max_symbols
    )
