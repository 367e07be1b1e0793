"""Generate the Qwen3-ASR golden fixture `qwen3-asr-tiny` with the official `qwen-asr` package.

A tiny **random-weight** Qwen3-ASR is built with the package's own classes
(`Qwen3ASRForConditionalGeneration` from a nested `Qwen3ASRConfig`: the real structure, small
sizes), with a real-format Qwen2 tokenizer whose added tokens sit at their real ids, saved in the
hub layout (config.json with `thinker_config`, safetensors in bf16, vocab.json + merges.txt +
tokenizer_config.json, chat_template.json, preprocessor_config.json, generation_config.json),
loaded back with `Qwen3ASRModel.from_pretrained` and run on real speech on CPU in fp32.

Real ids need a vocabulary of 151643 regular tokens: the BPE part trained here has a few hundred
(`vocab_base.json`), and ids up to 151642 are filled with `<fill_N>` tokens that no merge can
produce; their embedding rows (and those past the last added token) are zero. Only the
non-zero parts are committed (`hub/` small files, `vocab_base.json`, `weights.safetensors`);
`materialize()` writes the full hub directory from them, and the reference ran on exactly that
directory. The tests call the same function.

Reference environment (git-ignored), from the repository root:

    python3 -m venv .ref-venv-qwen
    .ref-venv-qwen/bin/pip install torch==2.13.0          # CPU build first
    .ref-venv-qwen/bin/pip install qwen-asr==0.0.6        # pins transformers 4.57.6

Regenerate (POLYASR_SHARED defaults to ../shared next to the repository):

    .ref-venv-qwen/bin/python tests/golden/make_qwen3asr.py
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "qwen3-asr-tiny"
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("POLYASR_SHARED", REPO.parent / "shared"))
REGEN_COMMAND = ".ref-venv-qwen/bin/python tests/golden/make_qwen3asr.py"

SEED = 22
VOCAB_SIZE = 151936
FIRST_ADDED = 151643  # <|endoftext|>: regular tokens are 0 .. 151642
BPE_SIZE = 640  # trained byte-level BPE tokens (256 bytes + merges)
NORM_NOISE = 0.2  # LayerNorm / RMSNorm weights 1 + 0.2 N(0, 1), LayerNorm biases 0.2 N(0, 1)
BIAS_STD = 0.1
# Every Linear / Conv2d weight is N(0, 1 / fan_in) (unit-scale activations) and the embedding
# N(0, 1). With tied embeddings a random decoder then mostly repeats its last token; larger
# residual branches and sharper decoder attention make the greedy output vary and depend on
# the audio; seed and scales were picked among a few tried for varied outputs, some ending on
# <|im_end|>, and argmax margins far above the parity tolerance.
RESIDUAL_SCALE = 3.0  # decoder o_proj and down_proj
END_SCALE = 1.5  # the <|im_end|> row, so that some outputs end within the budget
IM_END = 151645
QK_NORM_SCALE = 2.0  # decoder q_norm / k_norm weights
MAX_NEW_TOKENS = 32
SMALL_FILES = (
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "chat_template.json",
    "merges.txt",
)

AUDIO = dict(
    num_mel_bins=128,
    encoder_layers=2,
    encoder_attention_heads=2,
    encoder_ffn_dim=128,
    d_model=64,
    output_dim=16,
    n_window=50,
    n_window_infer=800,
    downsample_hidden_size=16,
    max_source_positions=1500,
    conv_chunksize=500,
    activation_function="gelu",
    scale_embedding=False,
)
TEXT = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=16,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    hidden_act="silu",
    max_position_embeddings=65536,
    rms_norm_eps=1e-6,
    rope_theta=1_000_000.0,
    rope_scaling={"rope_type": "default", "mrope_section": [2, 1, 1], "interleaved": True},
    tie_word_embeddings=True,
    attention_bias=False,
)
LANGUAGES = [
    "Chinese", "English", "Cantonese", "Arabic", "German", "French", "Spanish", "Portuguese",
    "Indonesian", "Italian", "Korean", "Russian", "Thai", "Vietnamese", "Japanese", "Turkish",
    "Hindi", "Malay", "Dutch", "Swedish", "Danish", "Finnish", "Polish", "Czech", "Filipino",
    "Persian", "Greek", "Romanian", "Hungarian", "Macedonian",
]  # fmt: skip

# Added tokens 151643 .. 151705. Names of the Qwen2.5 / Qwen3 chat tokens and of those Qwen3-ASR
# uses are the real ones; ids whose real name is not known here get `<|reserved_N|>`.
KNOWN_ADDED = {
    151643: ("<|endoftext|>", True),
    151644: ("<|im_start|>", True),
    151645: ("<|im_end|>", True),
    151646: ("<|object_ref_start|>", True),
    151647: ("<|object_ref_end|>", True),
    151648: ("<|box_start|>", True),
    151649: ("<|box_end|>", True),
    151650: ("<|quad_start|>", True),
    151651: ("<|quad_end|>", True),
    151652: ("<|vision_start|>", True),
    151653: ("<|vision_end|>", True),
    151654: ("<|vision_pad|>", True),
    151655: ("<|image_pad|>", True),
    151656: ("<|video_pad|>", True),
    151657: ("<tool_call>", False),
    151658: ("</tool_call>", False),
    151659: ("<|fim_prefix|>", False),
    151660: ("<|fim_middle|>", False),
    151661: ("<|fim_suffix|>", False),
    151662: ("<|fim_pad|>", False),
    151663: ("<|repo_name|>", False),
    151664: ("<|file_sep|>", False),
    151665: ("<tool_response>", False),
    151666: ("</tool_response>", False),
    151667: ("<think>", False),
    151668: ("</think>", False),
    151669: ("<|audio_start|>", True),
    151670: ("<|audio_end|>", True),
    151676: ("<|audio_pad|>", True),
    151704: ("<asr_text>", False),
    151705: ("<timestamp>", False),
}
LAST_ADDED = 151705

# The chat template (hub file content not seen): renders what qwen-asr's prompt needs, the
# system turn always, user content reduced to one audio marker per audio item.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'audio' -%}{{- '<|audio_start|><|audio_pad|><|audio_end|>' -}}"
    "{%- elif item['type'] == 'text' and message['role'] != 'user' -%}{{- item['text'] -}}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# (name, manifest path, first seconds or None, context, forced language or None)
CLIPS = [
    ("librispeech_2412", "en/librispeech_2412-153948-0000.flac", None, "", None),
    ("deepspeech_ru", "ru/deepspeech_ru.flac", None, "Бедняга, ребят", "Russian"),
    ("transcribe_rs_ru", "ru/transcribe_rs_russian.flac", None, "", None),
    ("pisets_first_0.8s", "ru/pisets_test_sound_ru.flac", 0.8, "", "English"),
]
FEATURE_EDGE = 32  # stored log-mel frames at each end of a clip (the whole mel is large)

# Raw outputs for the parser (qwen-asr's parse_asr_output and its repetition fix).
PARSE_CASES = [
    ("language English<asr_text>Hello world.", None),
    ("language None<asr_text>", None),
    ("language none<asr_text>  ", None),
    ("  language chinese<asr_text> 你好 ", None),
    ("language English\nsome note\n<asr_text>Text after a newline meta.", None),
    ("no tag at all", None),
    ("Already forced text", "Russian"),
    ("language German<asr_text>" + "ha" * 30 + " end", None),
    ("language French<asr_text>" + "a" * 25 + "b", None),
    ("language English<asr_text>" + "la la " * 25, None),
    ("x" * 21 + "<asr_text>" + "yes " * 22, None),
    ("language Japanese<asr_text>" + "あ" * 21 + "い" * 19, None),
    ("", None),
]


# --- the committed compact form <-> the hub directory (used by the tests too) ---------------


def filler(i: int) -> str:
    return f"<fill_{i}>"


def materialize(fixture: Path, out: Path, shards: int = 1, tie: bool = True) -> Path:
    """Write the full hub-layout directory of the fixture model to `out` and return it.

    `shards` > 1 splits the weights into `model-0000k-of-0000n.safetensors` with an index (the
    1.7B layout). `tie=False` declares untied embeddings in config.json (the stored lm_head,
    equal to the embedding, is then used).
    """
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    for name in SMALL_FILES:
        shutil.copyfile(fixture / "hub" / name, out / name)
    if not tie:
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        config["thinker_config"]["text_config"]["tie_word_embeddings"] = False
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    vocab = json.loads((fixture / "vocab_base.json").read_text(encoding="utf-8"))
    vocab.update({filler(i): i for i in range(len(vocab), FIRST_ADDED)})
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    state = load_file(str(fixture / "weights.safetensors"))
    head, tail = state.pop("embed_head"), state.pop("embed_tail")
    embed = torch.zeros(VOCAB_SIZE, head.shape[1], dtype=head.dtype)
    embed[: len(head)] = head
    embed[FIRST_ADDED : FIRST_ADDED + len(tail)] = tail
    state["thinker.model.embed_tokens.weight"] = embed
    state["thinker.lm_head.weight"] = embed.clone()  # stored beside the embedding, as published
    names = sorted(state)
    if shards == 1:
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        return out
    weight_map = {}
    for k in range(shards):
        part = names[k::shards]
        file = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: state[n] for n in part}, str(out / file), metadata={"format": "pt"})
        weight_map.update({n: file for n in part})
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return out


def read_clip(path: Path, seconds: float | None) -> np.ndarray:
    """16 kHz mono 16-bit FLAC as float32 (int16 / 32768), optionally only its start."""
    import soundfile

    samples, rate = soundfile.read(str(path), dtype="float32")
    assert rate == 16000 and samples.ndim == 1, (path, rate, samples.shape)
    return samples[: int(seconds * rate)] if seconds else samples


def manifest() -> list[dict]:
    lines = (SHARED / "data" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# --- building the model ---------------------------------------------------------------------


def train_bpe(texts: list[str]) -> tuple[dict[str, int], list[str]]:
    """A byte-level BPE with Qwen2's pre-tokenizer: vocab and merges in the hub file format."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    pattern = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
        r"|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    tokenizer.train_from_iterator(texts, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return dict(sorted(model["vocab"].items(), key=lambda kv: kv[1])), merges


def added_tokens() -> dict[int, tuple[str, bool]]:
    return {
        i: KNOWN_ADDED.get(i, (f"<|reserved_{i}|>", True))
        for i in range(FIRST_ADDED, LAST_ADDED + 1)
    }


def tokenizer_config() -> dict:
    added = added_tokens()
    decoder = {
        str(i): {
            "content": content,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }
        for i, (content, special) in added.items()
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": [c for c, s in added.values() if s and "reserved" not in c],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "extra_special_tokens": {
            "audio_token": "<|audio_pad|>",
            "audio_bos_token": "<|audio_start|>",
            "audio_eos_token": "<|audio_end|>",
        },
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "processor_class": "Qwen3ASRProcessor",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def preprocessor_config() -> dict:
    """The published 0.6B file (third-party copy, see the family doc)."""
    return {
        "chunk_length": 30,
        "dither": 0.0,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": 128,
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "Qwen3ASRProcessor",
        "return_attention_mask": True,
    }


def build_model(hub: Path) -> dict[str, torch.Tensor]:
    """The official class with random weights, shaped (see the README), saved to `hub` by
    `save_pretrained` (for config.json and generation_config.json); its state dict in bf16."""
    from qwen_asr.core.transformers_backend import Qwen3ASRConfig, Qwen3ASRForConditionalGeneration

    config = Qwen3ASRConfig(
        thinker_config=dict(
            audio_config=AUDIO,
            text_config=TEXT,
            audio_token_id=151676,
            audio_start_token_id=151669,
            audio_end_token_id=151670,
            user_token_id=872,
            dtype="bfloat16",
        ),
        support_languages=LANGUAGES,
    )
    torch.manual_seed(SEED)
    model = Qwen3ASRForConditionalGeneration(config).eval()
    gen = torch.Generator().manual_seed(SEED)

    def normal(p: torch.Tensor, std: float, mean: float = 0.0) -> None:
        p.copy_(mean + std * torch.randn(p.shape, generator=gen))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                normal(module.weight, module.weight[0].numel() ** -0.5)
                if module.bias is not None:
                    normal(module.bias, BIAS_STD)
            elif isinstance(module, torch.nn.LayerNorm) or "RMSNorm" in type(module).__name__:
                normal(module.weight, NORM_NOISE, 1.0)
                if getattr(module, "bias", None) is not None:
                    normal(module.bias, NORM_NOISE)
        for name, p in model.thinker.model.layers.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                p.mul_(RESIDUAL_SCALE)
            elif name.endswith(("q_norm.weight", "k_norm.weight")):
                p.mul_(QK_NORM_SCALE)
        embed = model.thinker.model.embed_tokens.weight
        normal(embed, 1.0)
        embed[IM_END] *= END_SCALE
        embed[BPE_SIZE:FIRST_ADDED] = 0.0
        embed[LAST_ADDED + 1 :] = 0.0
    model.to(torch.bfloat16)  # the published dtype; the reference runs the weights in fp32
    model.save_pretrained(str(hub), safe_serialization=True)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def write_compact(
    state: dict[str, torch.Tensor], vocab: dict[str, int], merges: list[str], config_dir: Path
) -> None:
    """The committed form: small hub files, the trained vocabulary, the non-zero weights."""
    from safetensors.torch import save_file

    (FIXTURE / "hub").mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "generation_config.json"):
        shutil.copyfile(config_dir / name, FIXTURE / "hub" / name)
    small = {
        "preprocessor_config.json": preprocessor_config(),
        "tokenizer_config.json": tokenizer_config(),
        "chat_template.json": {"chat_template": CHAT_TEMPLATE},
    }
    for name, content in small.items():
        text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
        (FIXTURE / "hub" / name).write_text(text, encoding="utf-8")
    merges_text = "#version: 0.2\n" + "\n".join(merges) + "\n"
    (FIXTURE / "hub" / "merges.txt").write_text(merges_text, encoding="utf-8")
    (FIXTURE / "vocab_base.json").write_text(
        json.dumps(vocab, ensure_ascii=False, indent=0) + "\n", encoding="utf-8"
    )
    compact = {k: v for k, v in state.items() if "embed_tokens" not in k and "lm_head" not in k}
    embed = state["thinker.model.embed_tokens.weight"]
    compact["embed_head"] = embed[:BPE_SIZE].clone()
    compact["embed_tail"] = embed[FIRST_ADDED : LAST_ADDED + 1].clone()
    save_file(compact, str(FIXTURE / "weights.safetensors"), metadata={"format": "pt"})


# --- running the reference ------------------------------------------------------------------


class WindowedEncoder:
    """Make the package's audio encoder attend within its 104-token windows (`cu_seqlens`),
    as FlashAttention-2 / vLLM do, by passing its own `_prepare_attention_mask` block mask to
    every layer (with sdpa it otherwise passes none: full attention)."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.layer_class = type(encoder.layers[0])
        self.original = self.layer_class.forward

    def __enter__(self):
        encoder, original = self.encoder, self.original

        def forward(layer, hidden_states, cu_seqlens, attention_mask=None, **kwargs):
            mask = encoder._prepare_attention_mask(hidden_states, cu_seqlens)
            return original(layer, hidden_states, cu_seqlens, attention_mask=mask, **kwargs)

        self.layer_class.forward = forward
        return self

    def __exit__(self, *exc) -> None:
        self.layer_class.forward = self.original


def run_clip(asr, wav: np.ndarray, context: str, language: str | None) -> dict:
    """Everything the package computes for one clip, batch of one, as `transcribe` runs it."""
    processor, model = asr.processor, asr.model
    prompt = asr._build_text_prompt(context=context, force_language=language)
    inputs = processor(text=[prompt], audio=[wav], return_tensors="pt", padding=True)
    inputs = inputs.to(model.device).to(model.dtype)
    frames = int(inputs["feature_attention_mask"].sum())
    with torch.no_grad():
        audio = model.thinker.get_audio_features(
            inputs["input_features"], feature_attention_mask=inputs["feature_attention_mask"]
        )
        out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, output_logits=True)
    prompt_len = inputs["input_ids"].shape[1]
    generated = out.sequences[0, prompt_len:].tolist()
    raw = processor.batch_decode(
        out.sequences[:, prompt_len:], skip_special_tokens=True, clean_up_tokenization_spaces=False
    )[0]
    logits = torch.cat(out.logits).float()  # [steps, vocab]
    top2 = logits.topk(2, dim=-1).values
    result = asr.transcribe(audio=(wav, 16000), context=context, language=language)[0]
    return {
        "prompt_text": prompt,
        "features": inputs["input_features"][0, :, :frames].float().numpy(),
        "audio": audio.float().numpy(),
        "prompt_ids": inputs["input_ids"][0].numpy(),
        "tokens": np.array(generated, dtype=np.int64),
        "logits": logits.numpy(),
        "raw": raw,
        "language": result.language,
        "text": result.text,
        "min_margin": float((top2[:, 0] - top2[:, 1]).min()),
    }


def reference(hub: Path) -> tuple[dict, dict]:
    from qwen_asr import Qwen3ASRModel
    from qwen_asr.inference.utils import detect_and_fix_repetitions, parse_asr_output

    torch.set_num_threads(2)
    asr = Qwen3ASRModel.from_pretrained(
        str(hub), dtype=torch.float32, max_inference_batch_size=1, max_new_tokens=MAX_NEW_TOKENS
    )
    print("attention:", asr.model.thinker.audio_tower.config._attn_implementation, file=sys.stderr)
    entries = {entry["path"] for entry in manifest()}
    arrays: dict[str, np.ndarray] = {}
    info: dict = {"clips": [], "parse_cases": []}
    for i, (name, path, seconds, context, language) in enumerate(CLIPS):
        assert path in entries, path
        wav = read_clip(SHARED / "data" / path, seconds)
        with WindowedEncoder(asr.model.thinker.audio_tower):
            windowed = run_clip(asr, wav, context, language)
        full = run_clip(asr, wav, context, language)
        t = windowed["features"].shape[1]
        arrays[f"features_head_{i}"] = windowed["features"][:, :FEATURE_EDGE]
        arrays[f"features_tail_{i}"] = windowed["features"][:, -FEATURE_EDGE:]
        arrays[f"prompt_ids_{i}"] = windowed["prompt_ids"]
        differ = not np.array_equal(windowed["audio"], full["audio"])
        runs = (("windowed", windowed), ("full", full)) if differ else (("windowed", windowed),)
        for variant, run in runs:  # full attention is stored only where it differs
            arrays[f"audio_{variant}_{i}"] = run["audio"]
            arrays[f"tokens_{variant}_{i}"] = run["tokens"]
            logits = run["logits"]
            arrays[f"logits_{variant}_{i}"] = np.concatenate(
                [logits[:, :BPE_SIZE], logits[:, FIRST_ADDED : LAST_ADDED + 1]], axis=1
            )
            assert np.all(logits[:, BPE_SIZE:FIRST_ADDED] == 0.0)
            assert np.all(logits[:, LAST_ADDED + 1 :] == 0.0)
        assert np.array_equal(windowed["prompt_ids"], full["prompt_ids"])
        info["clips"].append(
            {
                "name": name,
                "path": path,
                "seconds": seconds,
                "samples": len(wav),
                "sha256": sha256(wav),
                "frames": t,
                "features_sum": float(windowed["features"].astype(np.float64).sum()),
                "features_max": float(windowed["features"].max()),
                "audio_tokens": int(windowed["audio"].shape[0]),
                "context": context,
                "language": language,
                "prompt_text": windowed["prompt_text"],
                "full_differs": differ,
                "windowed_vs_full_audio_max_abs": float(
                    np.abs(windowed["audio"] - full["audio"]).max()
                ),
                **{
                    f"{variant}_{key}": run[key]
                    for variant, run in (("windowed", windowed), ("full", full))
                    for key in ("raw", "language", "text", "min_margin")
                },
                "windowed_steps": int(len(windowed["logits"])),
                "full_steps": int(len(full["logits"])),
            }
        )
    for raw, forced in PARSE_CASES:
        language, text = parse_asr_output(raw, user_language=forced)
        info["parse_cases"].append(
            {
                "raw": raw,
                "forced": forced,
                "language": language,
                "text": text,
                "fixed": detect_and_fix_repetitions(raw),
            }
        )
    return arrays, info


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def write_readme(info: dict) -> None:
    """README.md of the fixture: what was built, how, and what each array holds."""
    files = sorted(p for p in FIXTURE.rglob("*") if p.is_file() and p.name != "README.md")
    sizes = table(
        ["file", "bytes"], [[f"`{p.relative_to(FIXTURE)}`", p.stat().st_size] for p in files]
    )
    clip_rows = []
    for i, c in enumerate(info["clips"]):
        audio = f"`{c['path']}`" + (f" (first {c['seconds']} s)" if c["seconds"] else "")
        clip_rows.append(
            [
                i,
                f"`{c['name']}`",
                audio,
                c["samples"],
                c["frames"],
                c["audio_tokens"],
                json.dumps(c["context"], ensure_ascii=False),
                c["language"] or "-",
                f"{c['windowed_steps']} / {c['full_steps']}",
                f"{min(c['windowed_min_margin'], c['full_min_margin']):.3g}",
                f"{c['windowed_vs_full_audio_max_abs']:.2g}",
            ]
        )
    clips = table(
        ["#", "name", "audio", "samples", "mel frames", "audio tokens", "context", "forced",
         "steps windowed / full", "min argmax margin", "windowed vs full audio"],
        clip_rows,
    )  # fmt: skip
    raws = "\n".join(
        f"- {i} `{c['name']}`: raw {json.dumps(c['windowed_raw'], ensure_ascii=False)}, "
        f"language {json.dumps(c['windowed_language'])}, text "
        f"{json.dumps(c['windowed_text'], ensure_ascii=False)}"
        for i, c in enumerate(info["clips"])
    )
    ids = f"0 .. {info['bpe_size'] - 1} and {info['first_added']} .. {info['last_added']}"
    arrays = table(
        ["array", "content"],
        [
            [
                "`features_head_i`, `features_tail_i`",
                f"first / last {info['feature_edge']} frames of the log-mel [128, T] the "
                "processor gave (Whisper recipe, no 30 s padding); `frames`, `features_sum`, "
                "`features_max` of the whole mel are in reference.json",
            ],
            [
                "`prompt_ids_i`",
                "the processor's `input_ids`: the ChatML prompt with `<|audio_pad|>` repeated "
                "once per audio token",
            ],
            [
                "`audio_windowed_i`, `audio_full_0`",
                "`thinker.get_audio_features(...)` [audio tokens, 16]",
            ],
            [
                "`tokens_windowed_i`, `tokens_full_0`",
                "`generate(...).sequences` after the prompt (greedy; an ending `<|im_end|>` "
                "included)",
            ],
            [
                "`logits_windowed_i`, `logits_full_0`",
                f"`generate(..., output_logits=True)` per step, for ids {ids} concatenated; "
                "every other logit is exactly 0 (zero embedding rows)",
            ],
        ],
    )
    model = table(
        ["item", "value"],
        [
            [
                "audio encoder",
                "128 mels, 3 x Conv2d(3x3, stride 2) with 16 channels, `conv_out` 256 -> 64, "
                "2 layers, d_model 64, 2 heads, FFN 128, `n_window` 50, `n_window_infer` 800 "
                "(104-token windows), projector 64 -> 64 -> 16",
            ],
            [
                "decoder",
                "Qwen3: hidden 16, 2 layers, 4 query / 2 key-value heads of 8, SwiGLU 48, "
                f"rope_theta 1e6, RMSNorm eps 1e-6, tied embeddings, vocab {VOCAB_SIZE}",
            ],
            [
                "seed",
                f"`torch.manual_seed({SEED})` before building; a `torch.Generator` seeded "
                f"{SEED} for the weights",
            ],
            [
                "weights",
                f"every Linear / Conv2d weight N(0, 1 / fan_in), biases N(0, {BIAS_STD}^2); "
                f"LayerNorm / RMSNorm weights 1 + {NORM_NOISE} N(0, 1), LayerNorm biases "
                f"{NORM_NOISE} N(0, 1); decoder `o_proj` and `down_proj` x{RESIDUAL_SCALE}, "
                f"`q_norm` / `k_norm` x{QK_NORM_SCALE}; embedding N(0, 1) with the "
                f"`<|im_end|>` row x{END_SCALE} and the filler rows zero; then cast to bf16",
            ],
        ],
    )
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    bpe, first, last = info["bpe_size"], info["first_added"], info["last_added"]
    text = f"""# Qwen3-ASR golden fixture `qwen3-asr-tiny`

A tiny **random-weight** Qwen3-ASR built with the official package's own classes
(`qwen_asr.core.transformers_backend.Qwen3ASRForConditionalGeneration`; {versions}) with the
real structure and small sizes, saved in the **hub layout**, and the package's outputs on real
speech (CPU, fp32, batch of one). Its text is gibberish by design; what matters is that polyasr
reproduces the numbers. Generated by `tests/golden/make_qwen3asr.py`; checked by
`tests/test_qwen3asr.py`.

## Files

{sizes}

The committed files are the non-zero parts of the model. `make_qwen3asr.materialize(FIXTURE,
out)` writes the full hub directory the reference ran on:

- `hub/*` copied as is: `config.json` and `generation_config.json` as `save_pretrained` wrote
  them (transformers 4.57.6: nested `thinker_config`, `dtype` bfloat16, `transformers_version`),
  `preprocessor_config.json` (the published 0.6B content), `tokenizer_config.json`,
  `chat_template.json`, `merges.txt`.
- `vocab.json` = `vocab_base.json` (a {bpe}-token byte-level BPE trained with Qwen2's
  pre-tokenizer on the manifest transcripts, ids 0 .. {bpe - 1}) plus `<fill_N>` for every id up
  to {first - 1}, so that the added tokens of `tokenizer_config.json` get their **real ids**
  {first} .. {last} (transformers appends added tokens after the vocabulary in id order). No
  merge produces a `<fill_N>`. Names: the Qwen2.5 / Qwen3 chat tokens, `<|audio_start|>`
  151669, `<|audio_end|>` 151670, `<|audio_pad|>` 151676, `<asr_text>` 151704 (not special, so
  it survives `skip_special_tokens`) and `<timestamp>` 151705 are the real ones; the ids between
  whose real names are unknown here are `<|reserved_N|>` (special).
- `model.safetensors` (bf16, the published dtype): `weights.safetensors` with the embedding
  rebuilt from `embed_head` (ids 0 .. {bpe - 1}) and `embed_tail` (ids {first} .. {last}), zero
  elsewhere, and `thinker.lm_head.weight` stored beside it as in the published files (tied in
  config.json: the package ignores it and uses the embedding). `shards=2` writes the sharded
  layout with `model.safetensors.index.json`; `tie=False` declares untied embeddings (the
  stored head, equal to the embedding, is then used).

`chat_template.json` is reconstructed (the hub file was not seen): it renders the system turn
always, one `<|audio_start|><|audio_pad|><|audio_end|>` per audio item and the assistant turn,
which is the prompt qwen-asr's `_build_text_prompt` produces (see the family doc, section 6).
Because `config.json` carries `transformers_version` 4.57.6, the package's
`fix_mistral_regex=True` swaps the pre-tokenizer split for a Mistral one; it only differs on
text like `HelloWorld`, which no prompt here contains (polyasr keeps Qwen2's split).

## Model

{model}

## Clips and attention

Audio: `$POLYASR_SHARED/data/<path>`, 16 kHz mono 16-bit FLAC read with soundfile
(int16 / 32768; the same samples as polyasr's decoder, checked by `sha256` in reference.json).
Each clip ran twice, with {info["max_new_tokens"]} new tokens at most:

- **windowed** (polyasr's default): the package with its audio encoder's own
  `_prepare_attention_mask` block mask passed to every encoder layer, so each token attends
  within its 104-token (8 s) window, as FlashAttention-2, vLLM and transformers 5 run it;
- **full**: the package as installed (default `sdpa`, no mask passed): every audio token
  attends to the whole clip.

They differ only for clips longer than 104 audio tokens (clip 0); for the others the `full`
arrays equal the windowed ones and are not stored.

{clips}

Steps below {info["max_new_tokens"]} ended on `<|im_end|>`. Outputs (windowed; the package's
`transcribe()` gave the same language and text):

{raws}

## reference.npz

Suffix `_i` = clip i.

{arrays}

reference.json also holds the prompt text, the raw decoded output (`skip_special_tokens=True`),
the parsed language and text of both variants, and `parse_cases`: qwen-asr's
`parse_asr_output` / `detect_and_fix_repetitions` on crafted raw strings.

## Tolerances

Features, audio vectors and logits <= 1e-4 abs; prompt ids, greedy tokens (without the loop
guard, which the package does not have), raw text, language and text identical. The measured
errors of polyasr are listed in `tests/golden/README.md`. The smallest top-1 / top-2 logit
margin of any greedy decision is in the table above, far above the tolerance.

## Regenerate

From the repository root, with the reference venv described at the top of the script
(`.ref-venv-qwen`, git-ignored: `pip install torch==2.13.0`, then `pip install qwen-asr==0.0.6`)
and `POLYASR_SHARED` pointing at the shared folder (default `../shared`):

```sh
{REGEN_COMMAND}
```

It rewrites this folder; the output is deterministic.
"""
    (FIXTURE / "README.md").write_text(text, encoding="utf-8")


def versions() -> dict:
    import importlib.metadata as md

    return {
        p: md.version(p) for p in ("torch", "transformers", "qwen-asr", "tokenizers", "librosa")
    }


def main() -> None:
    texts = [entry.get("text") or "" for entry in manifest()]
    texts += [f"language {name}" for name in LANGUAGES + ["None"]]
    texts += ["system", "user", "assistant", "Бедняга, ребят", "\n"]
    vocab, merges = train_bpe(texts)
    assert len(vocab) == BPE_SIZE, len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        config_dir = Path(tmp) / "saved"
        state = build_model(config_dir)
        write_compact(state, vocab, merges, config_dir)
        hub = materialize(FIXTURE, Path(tmp) / "hub")
        arrays, info = reference(hub)
    info.update(
        seed=SEED,
        max_new_tokens=MAX_NEW_TOKENS,
        feature_edge=FEATURE_EDGE,
        bpe_size=BPE_SIZE,
        first_added=FIRST_ADDED,
        last_added=LAST_ADDED,
        versions=versions(),
        regenerate=REGEN_COMMAND,
    )
    np.savez_compressed(FIXTURE / "reference.npz", **arrays)
    (FIXTURE / "reference.json").write_text(
        json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_readme(info)
    for clip in info["clips"]:
        print(
            clip["name"],
            clip["audio_tokens"],
            "steps",
            clip["windowed_steps"],
            clip["full_steps"],
            "margin",
            f"{clip['windowed_min_margin']:.3g}",
            f"{clip['full_min_margin']:.3g}",
            "w-f",
            f"{clip['windowed_vs_full_audio_max_abs']:.2g}",
            repr(clip["windowed_raw"]),
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
