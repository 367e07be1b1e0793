"""Generate the GigaAM v3 golden fixtures `gigaam-v3-ctc` and `gigaam-v3-e2e-rnnt`.

Two tiny **random-weight** GigaAM v3 models are built with the official package's own classes
(`gigaam.GigaAMASR`, instantiated by hydra from an OmegaConf cfg with the real v3 structure but
small dims), saved in the published checkpoint layout (`torch.save({"cfg": DictConfig,
"state_dict": ...})`), reloaded strictly, and run on real Russian speech on CPU in fp32. The
outputs (log-mel features, encoder output, CTC log-probs / RNN-T greedy decisions with joint
log-probs, tokens, text, word timestamps, and a padded batch of 2) are written next to the
checkpoints, so polyasr's native implementation can be checked against the official code.

Reference environment (git-ignored, never committed), from the repository root:

    python3 -m venv .ref-venv-gigaam
    .ref-venv-gigaam/bin/pip install torch==2.13.0            # CPU build
    .ref-venv-gigaam/bin/pip install hydra-core omegaconf sentencepiece soundfile tqdm numpy \
        torch==2.13.0
    .ref-venv-gigaam/bin/pip install --no-deps torchaudio==2.11.0
    # GigaAM source: github.com/salute-developers/GigaAM at commit 8555893 (see GIGAAM_COMMIT),
    # extracted so that .ref-venv-gigaam/src/gigaam/__init__.py exists, e.g.
    #   git -C GigaAM archive 8555893 | tar -x -C .ref-venv-gigaam/src

Regenerate (from the repository root; POLYASR_SHARED defaults to ../shared):

    PYTHONPATH=.ref-venv-gigaam/src .ref-venv-gigaam/bin/python tests/golden/make_gigaam.py

torchaudio 2.11.0's compiled extension does not load against torch 2.13.0; GigaAM only uses
its pure-Python `MelSpectrogram`, so a stub `torchaudio._extension` module is registered before
the import (see `_import_gigaam`). There is no ffmpeg: the FLAC files are read with soundfile
(16-bit PCM -> int16 / 32768 as float32, the same values as GigaAM's ffmpeg loader) and the
waveforms are fed to the package as tensors; `inputs.npz` stores them.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import torch

SEED = 3003
HEAD_SEED = {"ctc": 3003, "rnnt": 4}  # the head is re-initialised from its own seed
GIGAAM_COMMIT = "85558932f047bf80d03f2b2e9dc2584c26e8bda6"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
UTTERANCES = ["deepspeech_ru", "pisets_test_sound_ru"]
REGEN_COMMAND = (
    "PYTHONPATH=.ref-venv-gigaam/src .ref-venv-gigaam/bin/python tests/golden/make_gigaam.py"
)

# Small dims; everything else is the real v3 structure.
D_MODEL = 48
N_HEADS = 4
N_LAYERS = 2
FF_EXPANSION = 4
PRED_HIDDEN = 32
JOINT_HIDDEN = 32
SPM_VOCAB = 96
# Random-weight shaping of the output layers (constants chosen once; see _shape_heads): the
# random encoder output is dominated by a per-utterance constant vector, so the head inputs are
# centred on the mean encoder frame of the two reference utterances and the weights scaled up;
# then the blank logit gets a bias so blanks and emissions are mixed.
CTC_SCALE = 6.0
CTC_BLANK_BIAS = 2.0
CTC_SPACE_BIAS = 1.0  # more ' ' tokens, so the word timestamps have several words
RNNT_ENC_SCALE = 2.0
RNNT_PRED_SCALE = 8.0
RNNT_EMBED_SCALE = 3.0
RNNT_OUT_SCALE = 3.0
RNNT_BLANK_BIAS = 2.53125
RNNT_UNK_BIAS = -4.0  # keep <unk> (id 0) from being emitted: its text is " ⁇ "
MIN_MARGIN = 1e-3  # every argmax decision must win by at least this much (log-prob units)

CHAR_VOCAB = [" "] + list("абвгдежзийклмнопрстуфхцчшщъыьэюя")
assert len(CHAR_VOCAB) == 33

# Russian text (public-domain Pushkin plus plain sentences) for the tiny SentencePiece model,
# cased and punctuated like the e2e models' output. The reference transcripts are added too.
SPM_TEXT = """\
Ничьих не требуя похвал, счастлив уж я надеждой сладкой,
Что дева с трепетом любви посмотрит, может быть, украдкой
На песни грешные мои. У лукоморья дуб зелёный.
Златая цепь на дубе том: и днём и ночью кот учёный
Всё ходит по цепи кругом; идёт направо — песнь заводит,
Налево — сказку говорит. Там чудеса: там леший бродит,
Русалка на ветвях сидит; там на неведомых дорожках
Следы невиданных зверей; избушка там на курьих ножках
Стоит без окон, без дверей; там лес и дол видений полны;
Там о заре прихлынут волны на брег песчаный и пустой,
И тридцать витязей прекрасных чредой из вод выходят ясных,
И с ними дядька их морской; там королевич мимоходом
Пленяет грозного царя; там в облаках перед народом
Через леса, через моря колдун несёт богатыря.
Мой дядя самых честных правил, когда не в шутку занемог,
Он уважать себя заставил и лучше выдумать не мог.
Я помню чудное мгновенье: передо мной явилась ты.
Добрый день! Как вас зовут? Меня зовут Мария, я живу в Москве.
Сегодня хорошая погода, и мы пойдём гулять в парк.
Нейронные сети распознают речь и переводят её в текст.
Проверка связи. Вы меня слышите? Да, слышу вас хорошо.
Поезд отправляется с первого пути через пять минут.
Бедняга, ребят, на его месте должен был быть я.
Это очень интересная книга, прочитайте её обязательно.
Вчера вечером мы смотрели фильм и пили чай с вареньем.
Широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства.
Съешь же ещё этих мягких французских булок, да выпей чаю.
"""


def _import_gigaam():
    """Import gigaam with a stub for torchaudio's compiled extension when it cannot load."""
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):
        for name in [m for m in sys.modules if m.startswith("torchaudio")]:
            del sys.modules[name]
        stub = types.ModuleType("torchaudio._extension")
        stub._IS_TORCHAUDIO_EXT_AVAILABLE = False
        stub._IS_ALIGN_AVAILABLE = False
        stub.fail_if_no_align = lambda func: func
        stub._load_lib = lambda *args, **kwargs: False
        sys.modules["torchaudio._extension"] = stub
        import torchaudio  # noqa: F401
    import gigaam

    return gigaam


def _cfg_dict(kind: str, spm_classes: int | None = None) -> dict:
    preprocessor = {
        "_target_": "gigaam.preprocess.FeatureExtractor",
        "sample_rate": 16000,
        "features": 64,
        "win_length": 320,
        "hop_length": 160,
        "mel_scale": "htk",
        "n_fft": 320,
        "mel_norm": None,
        "center": False,
    }
    encoder = {
        "_target_": "gigaam.encoder.ConformerEncoder",
        "feat_in": 64,
        "n_layers": N_LAYERS,
        "d_model": D_MODEL,
        "subsampling": "conv1d",
        "subs_kernel_size": 5,
        "subsampling_factor": 4,
        "ff_expansion_factor": FF_EXPANSION,
        "self_attention_model": "rotary",
        "pos_emb_max_len": 5000,
        "n_heads": N_HEADS,
        "conv_kernel_size": 5,
        "flash_attn": False,
        "conv_norm_type": "layer_norm",
    }
    if kind == "ctc":
        return {
            "model_class": "ctc",
            "sample_rate": 16000,
            "preprocessor": preprocessor,
            "encoder": encoder,
            "head": {
                "_target_": "gigaam.decoder.CTCHead",
                "feat_in": D_MODEL,
                "num_classes": len(CHAR_VOCAB) + 1,
            },
            "decoding": {"_target_": "gigaam.decoding.CTCGreedyDecoding", "vocabulary": CHAR_VOCAB},
            "model_name": "v3_ctc",
        }
    classes = spm_classes
    return {
        "model_class": "rnnt",
        "sample_rate": 16000,
        "preprocessor": preprocessor,
        "encoder": encoder,
        "head": {
            "_target_": "gigaam.decoder.RNNTHead",
            "decoder": {"pred_hidden": PRED_HIDDEN, "pred_rnn_layers": 1, "num_classes": classes},
            "joint": {
                "enc_hidden": D_MODEL,
                "pred_hidden": PRED_HIDDEN,
                "joint_hidden": JOINT_HIDDEN,
                "num_classes": classes,
            },
        },
        "decoding": {
            "_target_": "gigaam.decoding.RNNTGreedyDecoding",
            "vocabulary": None,
            "model_path": "v3_e2e_rnnt_tokenizer.model",
        },
        "model_name": "v3_e2e_rnnt",
    }


def train_spm(out_path: Path, vocab_size: int = SPM_VOCAB, model_type: str = "unigram") -> int:
    """Train a SentencePiece model on Russian text; returns its size (reproducible bytes)."""
    import sentencepiece as spm

    lines = SPM_TEXT.splitlines()
    for name in sorted(p.stem for p in (SHARED / "data" / "ru").glob("*.txt")):
        lines.append((SHARED / "data" / "ru" / f"{name}.txt").read_text(encoding="utf-8").strip())
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the .model records the input/prefix paths: keep them relative
        try:
            Path("corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            spm.SentencePieceTrainer.train(
                input="corpus.txt",
                model_prefix="spm",
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                normalization_rule_name="identity",  # no 240 kB NFKC table in the file
                unk_id=0,
                bos_id=-1,
                eos_id=-1,
                pad_id=-1,
                num_threads=1,
                seed_sentencepiece_size=100000,
                minloglevel=2,
            )
            out_path.write_bytes(Path("spm.model").read_bytes())
        finally:
            os.chdir(cwd)
    sp = spm.SentencePieceProcessor(model_file=str(out_path))
    return sp.get_piece_size()


def _randomize(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Perturb every LayerNorm so its affine parameters matter (default init is 1 / 0)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.add_(0.2 * torch.randn(module.weight.shape, generator=gen))
                module.bias.add_(0.2 * torch.randn(module.bias.shape, generator=gen))


def _mean_encoder_frame(model, audio: dict[str, np.ndarray]) -> torch.Tensor:
    frames = []
    with torch.inference_mode():
        for name in UTTERANCES:
            wav = torch.from_numpy(audio[name])[None]
            encoded, _ = model.forward(wav, torch.tensor([wav.shape[-1]]))
            frames.append(encoded[0].transpose(0, 1))
    return torch.cat(frames).mean(0).clone()


def _shape_heads(model, kind: str, audio: dict[str, np.ndarray]) -> None:
    """Scale and centre the random output layers so decoding depends on the audio."""
    torch.manual_seed(HEAD_SEED[kind])
    for module in model.head.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    mu = _mean_encoder_frame(model, audio)
    with torch.no_grad():
        if kind == "ctc":
            conv = model.head.decoder_layers[0]
            conv.weight.mul_(CTC_SCALE)
            conv.bias.sub_(conv.weight[:, :, 0] @ mu)
            conv.bias[-1] += CTC_BLANK_BIAS
            conv.bias[0] += CTC_SPACE_BIAS
        else:
            joint = model.head.joint
            joint.enc.weight.mul_(RNNT_ENC_SCALE)
            joint.enc.bias.sub_(joint.enc.weight @ mu)
            joint.pred.weight.mul_(RNNT_PRED_SCALE)
            model.head.decoder.embed.weight.mul_(RNNT_EMBED_SCALE)
            out = joint.joint_net[1]
            out.weight.mul_(RNNT_OUT_SCALE)
            out.bias[-1] += RNNT_BLANK_BIAS
            out.bias[0] += RNNT_UNK_BIAS
            assert float(model.head.decoder.embed.weight[-1].abs().max()) == 0.0


def _build(gigaam, kind: str, out_dir: Path):
    from omegaconf import OmegaConf

    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    if kind == "ctc":
        cfg_dict = _cfg_dict("ctc")
        tok_path = None
    else:
        tok_path = out_dir / "v3_e2e_rnnt_tokenizer.model"
        pieces = train_spm(tok_path)
        cfg_dict = _cfg_dict("rnnt", pieces + 1)
        tok_md5 = hashlib.md5(tok_path.read_bytes()).hexdigest()
        cfg_dict["hashes"] = {"tokenizer": tok_md5}
    cfg = OmegaConf.create(cfg_dict)
    run_cfg = copy.deepcopy(cfg)
    if tok_path is not None:
        run_cfg.decoding.model_path = str(tok_path)
    model = gigaam.GigaAMASR(run_cfg)
    _randomize(model, gen)
    _shape_heads(model, kind, _read_audio())
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    name = "v3_ctc" if kind == "ctc" else "v3_e2e_rnnt"
    ckpt = out_dir / f"{name}.ckpt"
    torch.save({"cfg": cfg, "state_dict": state}, ckpt)
    return ckpt, tok_path


def _load(gigaam, ckpt: Path, tok_path: Path | None):
    """What `gigaam.load_model` does after the download, on CPU (fp32, eval)."""
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = copy.deepcopy(checkpoint["cfg"])  # keep the stored cfg untouched for the report
    cfg.encoder.flash_attn = False
    if tok_path is not None:
        cfg.decoding.model_path = str(tok_path)
    model = gigaam.GigaAMASR(cfg)
    model.load_state_dict(checkpoint["state_dict"])  # strict
    return model.eval(), checkpoint


def _read_audio() -> dict[str, np.ndarray]:
    import soundfile as sf

    out = {}
    for name in UTTERANCES:
        data, sr = sf.read(str(SHARED / "data" / "ru" / f"{name}.flac"), dtype="float32")
        assert sr == 16000 and data.ndim == 1, (name, sr, data.shape)
        out[name] = np.ascontiguousarray(data, dtype=np.float32)
    return out


class _JointRecorder:
    """Wraps `head.joint.joint` and records every call's log-probs (batch of 1 in the loop)."""

    def __init__(self, joint):
        self.joint = joint
        self.original = joint.joint
        self.calls: list[torch.Tensor] = []

    def __enter__(self):
        def wrapped(enc, dec):
            out = self.original(enc, dec)
            self.calls.append(out.detach().clone())
            return out

        self.joint.joint = wrapped
        return self

    def __exit__(self, *exc):
        del self.joint.joint  # restore the bound method


def _save_npz(path: Path, **arrays) -> None:
    """`np.savez_compressed` with fixed zip timestamps, so regenerating is byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def _margin(logp: np.ndarray) -> float:
    top2 = np.sort(logp, axis=-1)[..., -2:]
    return float((top2[..., 1] - top2[..., 0]).min())


def _run(model, kind: str, audio: dict[str, np.ndarray]):
    arrays: dict[str, np.ndarray] = {}
    utts = []
    blank = model.decoding.blank_id
    max_symbols = getattr(model.decoding, "max_symbols", None)
    margins = []
    with torch.inference_mode():
        for i, name in enumerate(UTTERANCES):
            wav = torch.from_numpy(audio[name])[None]
            length = torch.tensor([wav.shape[-1]])
            feats, feat_len = model.preprocessor(wav, length)
            encoded, enc_len = model.encoder(feats, feat_len)
            enc2, enc_len2 = model.forward(wav, length)
            assert torch.equal(encoded, enc2) and torch.equal(enc_len, enc_len2)
            assert feats.shape[-1] == int(feat_len[0])
            assert encoded.shape[-1] == int(enc_len[0])
            arrays[f"features_{i}"] = feats[0].numpy().astype(np.float32)
            arrays[f"feature_len_{i}"] = np.int64(feat_len[0])
            arrays[f"encoder_out_{i}"] = encoded[0].transpose(0, 1).contiguous().numpy()
            arrays[f"encoded_len_{i}"] = np.int64(enc_len[0])
            if kind == "ctc":
                logp = model.head(encoded)[0].numpy()
                arrays[f"log_probs_{i}"] = logp
                margins.append(_margin(logp))
                decoded = model._decode(encoded, enc_len, length, word_timestamps=True)
            else:
                with _JointRecorder(model.head.joint) as rec:
                    decoded = model._decode(encoded, enc_len, length, word_timestamps=True)
                joint = torch.cat([c.reshape(1, -1) for c in rec.calls]).numpy()
                decisions = joint.argmax(-1)
                frames, t, run = [], 0, 0
                for k in decisions:  # replay the package loop to attach a frame to each step
                    frames.append(t)
                    if k == blank or run + 1 == max_symbols:
                        t, run = t + 1, 0
                    else:
                        run += 1
                frames = np.array(frames, dtype=np.int64)
                emitted = decisions != blank
                raw = model.decoding.decode(model.head, encoded, enc_len)[0]
                assert raw[1] == decisions[emitted].tolist()
                assert raw[2] == frames[emitted].tolist()
                arrays[f"rnnt_frames_{i}"] = frames
                arrays[f"rnnt_tokens_{i}"] = decisions.astype(np.int64)
                arrays[f"rnnt_joint_{i}"] = joint.astype(np.float32)
                margins.append(_margin(joint))
            text, words = decoded[0]  # _decode returns (text, words); ids/frames from decode()
            raw = model.decoding.decode(model.head, encoded, enc_len)[0]
            assert raw[0] == text
            ids, token_frames = raw[1], raw[2]
            arrays[f"tokens_{i}"] = np.array(ids, dtype=np.int64)
            arrays[f"token_frames_{i}"] = np.array(token_frames, dtype=np.int64)
            utts.append(
                {
                    "index": i,
                    "name": name,
                    "audio": f"data/ru/{name}.flac",
                    "num_samples": int(wav.shape[-1]),
                    "text": text,
                    "num_tokens": len(ids),
                    "frame_shift": int(wav.shape[-1]) / 16000 / int(enc_len[0]),
                    "words": [{"text": w.text, "start": w.start, "end": w.end} for w in words],
                }
            )

        # Batch of 2, zero-padded waveforms, through the package's batched forward.
        wavs = [torch.from_numpy(audio[n]) for n in UTTERANCES]
        lens = torch.tensor([len(w) for w in wavs])
        batch = torch.zeros(len(wavs), int(lens.max()))
        for b, w in enumerate(wavs):
            batch[b, : len(w)] = w
        enc_b, len_b = model.forward(batch, lens)
        assert not torch.isnan(enc_b).any()
        arrays["batch_encoder_out"] = enc_b.transpose(1, 2).contiguous().numpy()
        arrays["batch_lengths"] = len_b.to(torch.int64).numpy()
        arrays["batch_feature_lengths"] = model.preprocessor.out_len(lens).numpy()
        batch_texts = [t for t, _ in model._decode(enc_b, len_b, lens)]
        batch_diff = []
        for b in range(len(wavs)):
            n = int(len_b[b])
            single = arrays[f"encoder_out_{b}"]
            batch_diff.append(float(np.abs(arrays["batch_encoder_out"][b, :n] - single).max()))
    return arrays, utts, batch_texts, batch_diff, min(margins)


MEANINGS = {
    "features": "log-mel `[64, T]` of utterance i alone: "
    "`model.preprocessor(wav[None], len)[0][0]` (periodic Hann 320, hop 160, center False, "
    "power, 64 HTK mels, no norm, "
    "ln(clamp(x, 1e-9, 1e9)))",
    "feature_len": "T = (N - 320) // 160 + 1 (`preprocessor.out_len`)",
    "encoder_out": "**time-major** `[T', d_model]`: the package's `model.encoder(features, "
    "feature_len)[0][0]` (package layout `[B, d, T']`) **transposed**",
    "encoded_len": "T' = ceil(ceil(T / 2) / 2)",
    "log_probs": "`model.head(encoded)[0]`: CTC log_softmax `[T', C]`, blank = C - 1 = 33",
    "tokens": "emitted token ids (no blanks) from the package's greedy decoding, in order",
    "token_frames": "encoder frame of each emitted token (CTC: first frame of its run)",
    "rnnt_frames": "encoder frame t of every greedy decision step (blank and non-blank)",
    "rnnt_tokens": "argmax of every decision step, blank (= C - 1 = 96) included; its non-blank "
    "entries are `tokens`",
    "rnnt_joint": "joint **log-probs** `[steps, C]` (`head.joint.joint(...)`, log_softmax) at "
    "every decision step, as the package computed them inside its greedy loop",
    "batch_encoder_out": "`model.forward(padded_wavs [2, Nmax], lens)` transposed to `[B, T'max, "
    "d_model]`; rows at or past `batch_lengths[b]` are padding garbage: do not compare them",
    "batch_lengths": "encoder lengths T'_b of the batched pass",
    "batch_feature_lengths": "feature lengths T_b of the batched pass",
}

RNNT_NOTE = """
The RNN-T arrays come from wrapping `head.joint.joint` during the package's own
`RNNTGreedyDecoding.decode` (batch of 1, so one call = one decision): the predictor starts from a
zero input vector and zero state, advances only on non-blank, and a frame ends on blank or after
10 emissions (the cap is reached in these references)."""

TOKENIZER_NOTE = """
`cfg.decoding.model_path` holds the bare file name `v3_e2e_rnnt_tokenizer.model` (resolve it next
to the checkpoint; `gigaam.load_model` overwrites it with its download path anyway)."""


def _describe(arrays: dict[str, np.ndarray]) -> str:
    rows = ["| array | shape | dtype | content |", "|---|---|---|---|"]
    for key, value in arrays.items():
        base = key.rsplit("_", 1)[0] if key[-1].isdigit() else key
        rows.append(f"| `{key}` | {list(value.shape)} | {value.dtype} | {MEANINGS[base]} |")
    return "\n".join(rows)


def _readme(folder, kind, info, arrays, cfg_yaml, sizes) -> str:
    ctc = kind == "ctc"
    name = "v3_ctc" if ctc else "v3_e2e_rnnt"
    utts = info["utterances"]
    if ctc:
        head_rows = (
            f"| head | `CTCHead`: Conv1d(k 1) {D_MODEL} -> 34, log_softmax; blank = 33 |\n"
            "| vocabulary | the real `v3_ctc` char list in `cfg.decoding.vocabulary`: ' ' (0), "
            "а…я without ё (1…32) |\n"
            "| decoding | `CTCGreedyDecoding` |"
        )
        shaping = (
            f"CTC conv weight x{CTC_SCALE}, bias -= W·mu, blank bias +{CTC_BLANK_BIAS}, "
            f"space bias +{CTC_SPACE_BIAS}"
        )
        tol = "CTC `log_probs` ≤ 1e-4 abs"
    else:
        head_rows = (
            f"| head | `RNNTHead`: Embedding(97, {PRED_HIDDEN}, padding_idx 96) + 1-layer LSTM "
            f"{PRED_HIDDEN}; joint: enc {D_MODEL}->{JOINT_HIDDEN}, pred {PRED_HIDDEN}->"
            f"{JOINT_HIDDEN}, ReLU, {JOINT_HIDDEN}->97, log_softmax; blank = 96 |\n"
            f"| tokenizer | `v3_e2e_rnnt_tokenizer.model`: SentencePiece unigram, {SPM_VOCAB} "
            "pieces (`<unk>` = 0, no bos/eos/pad, identity normalization), trained by the script "
            "on cased, punctuated Russian text (`SPM_TEXT` + `data/ru/*.txt`) |\n"
            "| decoding | `RNNTGreedyDecoding`, max_symbols_per_step 10 (class default, not in "
            "cfg) |"
        )
        shaping = (
            f"joint.enc weight x{RNNT_ENC_SCALE} with bias -= W·mu, joint.pred weight "
            f"x{RNNT_PRED_SCALE}, embedding x{RNNT_EMBED_SCALE} (the blank row stays 0), output "
            f"weight x{RNNT_OUT_SCALE}, blank bias +{RNNT_BLANK_BIAS}, `<unk>` bias "
            f"{RNNT_UNK_BIAS}"
        )
        tol = "`rnnt_joint` ≤ 1e-4 abs (log-probs); `rnnt_frames` / `rnnt_tokens` identical"
    texts = "\n".join(
        f"- `{u['name']}` ({u['num_samples']} samples, T' {arrays['encoded_len_' + str(i)]}, "
        f"{u['num_tokens']} tokens, words: {len(u['words'])}): "
        f"{json.dumps(u['text'], ensure_ascii=False)}"
        for i, u in enumerate(utts)
    )
    files = "\n".join(f"| `{f}` | {n} |" for f, n in sorted(sizes.items()))
    batch_diff = max(info["batch_vs_single_max_abs_diff"])
    tokenizer_note = "" if ctc else TOKENIZER_NOTE
    encoder_row = (
        f"| encoder | conv1d subsampling x4 (two Conv1d k 5 stride 2 + ReLU), d_model {D_MODEL}, "
        f"{N_HEADS} heads (head dim {D_MODEL // N_HEADS}), {N_LAYERS} layers, d_ff "
        f"{D_MODEL * FF_EXPANSION} (x{FF_EXPANSION}), rotary attention (RoPE on the layer input, "
        "base 5000), conv module with depthwise kernel 5 and LayerNorm (`conv.batch_norm`) |"
    )
    seed_row = (
        f"| seed | `torch.manual_seed({SEED})` before `GigaAMASR(cfg)`; the head re-initialised "
        f"after `torch.manual_seed({HEAD_SEED[kind]})` |"
    )
    audio_rows = "\n".join(
        f"| `audio_{i}` | [{u['num_samples']}] | float32 | "
        f"`$POLYASR_SHARED/data/ru/{u['name']}.flac` |"
        for i, u in enumerate(utts)
    )
    return f"""# GigaAM golden fixture `{folder}`

A tiny **random-weight** GigaAM v3 {"CTC" if ctc else "end-to-end RNN-T"} model, built with the
official package's own classes (`gigaam.GigaAMASR` from github.com/salute-developers/GigaAM at
commit `{GIGAAM_COMMIT}`, the repository head, package version string `0.1.0`) with the real v3
structure and small dims, saved in the **published checkpoint layout**, plus the official
package's outputs on two real Russian utterances. Its text is gibberish by design; what matters
is that polyasr reproduces the numbers. Generated by `tests/golden/make_gigaam.py`.

## Files

| file | bytes |
|---|---|
{files}
| `README.md` | this file |

`{name}.ckpt` has the layout of the CDN files: `torch.save({{"cfg": omegaconf.DictConfig,
"state_dict": OrderedDict}})`; load it with `torch.load(path, map_location="cpu",
weights_only=False)` (omegaconf must be importable). The state dict is `GigaAMASR.state_dict()`
in fp32, so it includes the preprocessor buffers `preprocessor.featurizer.0.spectrogram.window`
[320] and `preprocessor.featurizer.0.mel_scale.fb` [161, 64]; the RoPE table is non-persistent
and absent. It loads with strict `load_state_dict` into `GigaAMASR(cfg)`.{tokenizer_note}

## Model

| item | value |
|---|---|
| preprocessor | 16 kHz, 64 HTK mels, n_fft = win = 320, hop 160, center False |
{encoder_row}
{head_rows}
| parameters | {info["num_parameters"]} |
{seed_row}

Weights are PyTorch default inits, then every LayerNorm weight and bias gets + 0.2·N(0, 1)
(generator seeded {SEED}). The random encoder output is dominated by one constant vector, so the
output layers are centred on `mu` (the mean encoder frame of the two utterances below) and scaled
so decoding depends on the audio: {shaping}. Every argmax decision stored here wins by at least
{info["min_argmax_margin"]:.4f} (log-prob units), so the tolerances below cannot flip a token.

### cfg (as stored in the checkpoint)

```yaml
{cfg_yaml.rstrip()}
```

## inputs.npz

| array | shape | dtype | content |
|---|---|---|---|
{audio_rows}
| `names` | [2] | str | the two utterance names |
| `sampling_rate` | [] | int64 | 16000 |

The FLACs are 16 kHz mono 16-bit PCM, read with `soundfile.read(..., dtype="float32")`, i.e.
int16 / 32768: the same values GigaAM's ffmpeg loader produces. Feed these exact samples.

## reference.npz

The official package on CPU, fp32, `eval()`, no autocast, `torch.inference_mode()`; torch
{info["versions"]["torch"]}, torchaudio {info["versions"]["torchaudio"]} (its Python
`MelSpectrogram` only). Suffix `_i` = utterance i of `inputs.npz`, each run alone (batch of 1).
Both npz files are written with `np.savez_compressed`; `np.load` reads them as usual.

{_describe(arrays)}

`model.forward(wav, len)` (preprocessor + encoder, as `transcribe` calls it) gives a
bit-identical `encoder_out`.{"" if ctc else RNNT_NOTE}

## reference.json

`cfg` (as stored), `versions`, `seed`, and per utterance: `text` (decoded by the package's
tokenizer), `num_tokens`, `frame_shift` (= num_samples / 16000 / T'), and `words`, the package's
word timestamps (`GigaAMASR._decode(..., word_timestamps=True)`, the step `transcribe(...,
word_timestamps=True)` runs after loading the audio: `start = first_frame·shift`, `end =
(last_frame + 1)·shift`, seconds, unrounded, empty words skipped). `batch_texts` = the texts
decoded from the batched pass (equal to the single ones); `batch_vs_single_max_abs_diff` = max
|batch - single| of the encoder output over valid frames; `min_argmax_margin`.

Reference texts:

{texts}

## Tolerances

Features ≤ 1e-4 abs; encoder output ≤ 1e-4 relative (max abs diff / max abs value); {tol};
`tokens`, `token_frames`, text and word boundaries identical (word times ≤ 1e-6 s); batch vs
single on valid frames ≤ 1e-4 relative (the package itself differs by {batch_diff:.1e} abs).

## Regenerate

From the repository root, with the reference venv described at the top of the script
(`.ref-venv-gigaam`, git-ignored: torch 2.13.0 CPU, torchaudio 2.11.0 installed `--no-deps`,
hydra-core, omegaconf, sentencepiece, soundfile, and the GigaAM source at `{GIGAAM_COMMIT[:7]}`
extracted to `.ref-venv-gigaam/src`) and `POLYASR_SHARED` pointing at the shared folder (default
`../shared` next to the repository):

```sh
{REGEN_COMMAND}
```

It rewrites both GigaAM fixture folders; the output is deterministic.
"""


def main() -> None:
    torch.set_num_threads(1)
    gigaam = _import_gigaam()
    import omegaconf
    import sentencepiece
    import torchaudio

    audio = _read_audio()
    versions = {
        "gigaam_commit": GIGAAM_COMMIT,
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "omegaconf": omegaconf.__version__,
        "sentencepiece": sentencepiece.__version__,
        "numpy": np.__version__,
    }
    for kind, folder in [("ctc", "gigaam-v3-ctc"), ("rnnt", "gigaam-v3-e2e-rnnt")]:
        out_dir = HERE / folder
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt, tok = _build(gigaam, kind, out_dir)
        model, checkpoint = _load(gigaam, ckpt, tok)
        arrays, utts, batch_texts, batch_diff, margin = _run(model, kind, audio)
        for u in utts:
            assert u["num_tokens"] >= 10, (folder, u)
        assert batch_texts == [u["text"] for u in utts], (batch_texts, utts)
        assert margin >= MIN_MARGIN, (folder, margin)
        if kind == "rnnt":  # README says the 10-symbols-per-frame cap is exercised
            assert max(np.bincount(arrays[f"token_frames_{i}"]).max() for i in (0, 1)) == 10
        _save_npz(
            out_dir / "inputs.npz",
            audio_0=audio[UTTERANCES[0]],
            audio_1=audio[UTTERANCES[1]],
            names=np.array(UTTERANCES),
            sampling_rate=np.int64(16000),
        )
        _save_npz(out_dir / "reference.npz", **arrays)
        info = {
            "fixture": folder,
            "seed": SEED,
            "head_seed": HEAD_SEED[kind],
            "versions": versions,
            "cfg": omegaconf.OmegaConf.to_container(checkpoint["cfg"]),
            "utterances": utts,
            "batch_texts": batch_texts,
            "batch_vs_single_max_abs_diff": batch_diff,
            "min_argmax_margin": margin,
            "num_parameters": sum(p.numel() for p in model.parameters()),
        }
        (out_dir / "reference.json").write_text(
            json.dumps(info, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        sizes = {p.name: p.stat().st_size for p in out_dir.iterdir() if p.name != "README.md"}
        cfg_yaml = omegaconf.OmegaConf.to_yaml(checkpoint["cfg"])
        readme = _readme(folder, kind, info, arrays, cfg_yaml, sizes)
        (out_dir / "README.md").write_text(readme, encoding="utf-8")
        print(folder, margin, [(u["text"], u["num_tokens"]) for u in utts])


if __name__ == "__main__":
    main()
