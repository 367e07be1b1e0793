"""Qwen2 byte-level BPE from the hub files, the ASR chat prompt and the language names.

The hub ships `vocab.json` + `merges.txt` and lists its added tokens (the chat and audio
markers, `<asr_text>`) with their ids in `tokenizer_config.json`; transformers builds a fast
tokenizer from them exactly as `from_vocab_and_merges` does here. A `tokenizer.json`, when
present, is used as is.
"""

from __future__ import annotations

import json
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE

from ...errors import ModelError, OptionError

# Qwen2's pre-tokenizer split (transformers' Qwen2Converter).
PRETOKENIZE = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The 30 languages Qwen3-ASR can be forced to (qwen-asr `SUPPORTED_LANGUAGES`), by ISO code.
LANGUAGE_NAMES = {
    "zh": "Chinese",
    "en": "English",
    "yue": "Cantonese",
    "ar": "Arabic",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pt": "Portuguese",
    "id": "Indonesian",
    "it": "Italian",
    "ko": "Korean",
    "ru": "Russian",
    "th": "Thai",
    "vi": "Vietnamese",
    "ja": "Japanese",
    "tr": "Turkish",
    "hi": "Hindi",
    "ms": "Malay",
    "nl": "Dutch",
    "sv": "Swedish",
    "da": "Danish",
    "fi": "Finnish",
    "pl": "Polish",
    "cs": "Czech",
    "fil": "Filipino",
    "fa": "Persian",
    "el": "Greek",
    "ro": "Romanian",
    "hu": "Hungarian",
    "mk": "Macedonian",
}
LANGUAGE_CODES = {name: code for code, name in LANGUAGE_NAMES.items()}

AUDIO_PAD, AUDIO_START, AUDIO_END = "<|audio_pad|>", "<|audio_start|>", "<|audio_end|>"
END_TOKENS = ("<|im_end|>", "<|endoftext|>")


def render_prompt(context: str, language: str | None) -> str:
    """The prompt qwen-asr renders with the hub chat template: the context as the system turn,
    one audio item as the user turn, the assistant turn opened; a forced language is appended
    as `language Name<asr_text>` so that the model writes the transcript only."""
    text = (
        f"<|im_start|>system\n{context}<|im_end|>\n<|im_start|>user\n"
        f"{AUDIO_START}{AUDIO_PAD}{AUDIO_END}<|im_end|>\n<|im_start|>assistant\n"
    )
    return text + (f"language {language}<asr_text>" if language else "")


def language_name(language: str) -> str:
    """Qwen3-ASR's name for an ISO code (`ru`) or a name in any case (`russian`)."""
    code = language.strip().lower()
    code = {"tl": "fil"}.get(code, code)  # Whisper's code for Tagalog / Filipino
    if code in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[code]
    name = code[:1].upper() + code[1:]
    if name in LANGUAGE_CODES:
        return name
    known = ", ".join(f"{c} ({n})" for c, n in LANGUAGE_NAMES.items())
    raise OptionError(f"Qwen3-ASR cannot be forced to language {language!r}; use one of: {known}")


def _json(assets: dict[str, bytes], name: str, where: str) -> Any:
    try:
        return json.loads(assets[name].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {where}/{name}: {exc}") from None


def from_vocab_and_merges(assets: dict[str, bytes], where: str) -> Tokenizer:
    """The fast Qwen2 tokenizer transformers converts from `vocab.json` and `merges.txt`, with
    the added tokens of `tokenizer_config.json` appended in id order."""
    vocab = _json(assets, "vocab.json", where)
    try:
        lines = assets["merges.txt"].decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ModelError(f"cannot read {where}/merges.txt: {exc}") from None
    merges = [
        tuple(line.split())
        for i, line in enumerate(lines)
        if line.strip() and not (i == 0 and line.startswith("#version:"))
    ]
    if not isinstance(vocab, dict) or any(len(m) != 2 for m in merges):
        raise ModelError(f"vocab.json / merges.txt in {where} are not a BPE vocabulary")
    try:
        model = BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False)
    except Exception as exc:  # the Rust side reports unknown merge tokens and the like
        raise ModelError(f"cannot build the tokenizer from {where}: {exc}") from None
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    config_name = "tokenizer_config.json"
    config = _json(assets, config_name, where) if config_name in assets else {}
    try:
        _add_tokens(tokenizer, config)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"invalid added tokens in {where}/{config_name}: {exc!r}") from None
    return tokenizer


def _add_tokens(tokenizer: Tokenizer, config: dict[str, Any]) -> None:
    """The added tokens of tokenizer_config.json in id order, special as transformers decides
    (flagged, or named eos/pad/unk/bos/additional special). Each gets the next free id, as in
    transformers' fast tokenizer (what qwen-asr and vLLM load; 4.57 and 5.x alike): ids that
    skip a number close up rather than fail, and the model's `audio_token_id` is checked
    against the result when the recognizer is built."""
    named_special = {config.get(k) for k in ("eos_token", "pad_token", "unk_token", "bos_token")}
    named_special |= set(config.get("additional_special_tokens") or [])
    added = config.get("added_tokens_decoder") or {}
    for key in sorted(added, key=int):
        spec = added[key]
        special = bool(spec.get("special")) or spec["content"] in named_special
        token = AddedToken(
            spec["content"],
            single_word=spec.get("single_word", False),
            lstrip=spec.get("lstrip", False),
            rstrip=spec.get("rstrip", False),
            normalized=spec.get("normalized", not special),
            special=special,
        )
        if special:
            tokenizer.add_special_tokens([token])
        else:
            tokenizer.add_tokens([token])


class Qwen3AsrTokenizer:
    """Text <-> ids, the ids of the markers the prompt and decoding need, and prompts."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.audio_pad = self.token_id(AUDIO_PAD)
        self.end_ids = tuple(self.token_id(t) for t in END_TOKENS)

    @classmethod
    def from_assets(cls, assets: dict[str, bytes], where: str) -> Qwen3AsrTokenizer:
        """From a `tokenizer.json`, else `vocab.json` + `merges.txt` (+ tokenizer_config.json)."""
        if "tokenizer.json" in assets:
            try:
                tokenizer = Tokenizer.from_str(assets["tokenizer.json"].decode("utf-8"))
            except Exception as exc:  # the Rust parser reports any malformed file
                raise ModelError(f"cannot read {where}/tokenizer.json: {exc}") from None
        elif "vocab.json" in assets and "merges.txt" in assets:
            tokenizer = from_vocab_and_merges(assets, where)
        else:
            raise ModelError(
                f"incomplete Qwen3-ASR model directory {where}: the tokenizer files "
                "vocab.json and merges.txt (or tokenizer.json) are missing"
            )
        return cls(tokenizer)

    def token_id(self, token: str) -> int:
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise ModelError(f"the Qwen3-ASR tokenizer has no {token} token")
        return found

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        """Text of `ids` with special tokens dropped (`<asr_text>` is not special and stays)."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def prompt(self, n_audio: int, context: str = "", language: str | None = None) -> list[int]:
        """Prompt ids with the one `<|audio_pad|>` expanded to `n_audio` copies."""
        ids = self.encode(render_prompt(context, language))
        if ids.count(self.audio_pad) != 1:
            raise OptionError(f"the context must not contain {AUDIO_PAD}")
        at = ids.index(self.audio_pad)
        return ids[:at] + [self.audio_pad] * n_audio + ids[at + 1 :]
