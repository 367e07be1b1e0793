"""Whisper's byte-level BPE tokenizer with the special-token layout derived from the vocab size."""

from __future__ import annotations

import string
import warnings
from functools import cached_property

from tokenizers import Tokenizer

from ...errors import ModelError
from ...languages import UNSPACED_LANGUAGES

LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th "
    "ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr "
    "pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt "
    "haw ln ha ba jw su yue"
).split()


class WhisperTokenizer:
    """Text <-> ids, plus the ids of every special token of one vocabulary."""

    def __init__(self, tokenizer: Tokenizer, vocab_size: int) -> None:
        self.tokenizer = tokenizer
        self.multilingual = vocab_size >= 51865
        self.eot = 50257 if self.multilingual else 50256
        n_langs = vocab_size - 51765 - int(self.multilingual)
        self.languages = tuple(LANGUAGES[:n_langs]) if self.multilingual else ("en",)
        self.sot = self.eot + 1
        first_lang = self.sot + 1
        self.language_ids = {code: first_lang + i for i, code in enumerate(LANGUAGES[:n_langs])}
        self.translate = first_lang + n_langs
        self.transcribe = self.translate + 1
        self.sot_lm = self.transcribe + 1
        self.sot_prev = self.sot_lm + 1
        self.no_speech = self.sot_prev + 1
        self.no_timestamps = self.no_speech + 1
        self.timestamp_begin = self.no_timestamps + 1
        self.vocab_size = vocab_size

    @classmethod
    def from_bytes(cls, data: bytes, vocab_size: int, what: str) -> WhisperTokenizer:
        """The tokenizer of a `tokenizer.json` file's contents (`what` names it in errors)."""
        try:
            tokenizer = Tokenizer.from_str(data.decode("utf-8"))
        except Exception as exc:  # the Rust parser reports any malformed file
            raise ModelError(f"cannot read {what}: {exc}") from None
        tok = cls(tokenizer, vocab_size)
        tok.check_merges()
        return tok

    def check_merges(self) -> None:
        """Warn when the BPE merges are incomplete (some published files lack the first one)."""
        expected = 264 if self.multilingual else 262
        if self.encode(" the") != [expected]:
            warnings.warn(
                "tokenizer.json encodes ' the' unlike the reference Whisper tokenizer; "
                "its merge list may be incomplete and prompts may tokenize differently",
                stacklevel=3,
            )

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        """Text of the ordinary tokens (specials and timestamps dropped)."""
        return self.tokenizer.decode([i for i in ids if i < self.eot], skip_special_tokens=False)

    def decode_raw(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def sot_sequence(self, language: str | None, task: str) -> list[int]:
        if not self.multilingual:
            return [self.sot]
        lang = self.language_ids[language or "en"]
        return [self.sot, lang, self.translate if task == "translate" else self.transcribe]

    @cached_property
    def non_speech_tokens(self) -> list[int]:
        """openai's default suppression set: symbols and music notes that are not speech."""
        symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
        miscellaneous = set("♩♪♫♬♭♮♯")
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in symbols + list(miscellaneous):
            for tokens in (self.encode(symbol), self.encode(" " + symbol)):
                if len(tokens) == 1 or symbol in miscellaneous:
                    result.add(tokens[0])
        return sorted(result)

    def split_to_words(
        self, tokens: list[int], language: str | None
    ) -> tuple[list[str], list[list[int]]]:
        """Group tokens into words (per character for unspaced scripts)."""
        if language in UNSPACED_LANGUAGES:
            return self._split_on_unicode(tokens)
        return self._split_on_spaces(tokens)

    def _split_on_unicode(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        full = self.decode_raw(tokens)
        words: list[str] = []
        word_tokens: list[list[int]] = []
        current: list[int] = []
        offset = 0
        for token in tokens:
            current.append(token)
            decoded = self.decode_raw(current)
            bad = decoded.find("\ufffd")
            if bad < 0 or (offset + bad < len(full) and full[offset + bad] == "\ufffd"):
                words.append(decoded)
                word_tokens.append(current)
                current = []
                offset += len(decoded)
        return words, word_tokens

    def _split_on_spaces(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        words: list[str] = []
        word_tokens: list[list[int]] = []
        for sub, sub_tokens in zip(*self._split_on_unicode(tokens)):
            special = sub_tokens[0] >= self.eot
            starts_word = sub.startswith(" ") or sub.strip() in string.punctuation
            if special or starts_word or not words:
                words.append(sub)
                word_tokens.append(sub_tokens)
            else:
                words[-1] += sub
                word_tokens[-1].extend(sub_tokens)
        return words, word_tokens
