"""Greedy generation with a KV cache for a batch of prompts, a loop guard, and output parsing.

The prompts of a batch are prefilled one at a time (no padding work; each row's numbers are
those of a batch of one) into a shared cache where they sit right-aligned, then every step
decodes all unfinished rows together. Parsing follows qwen-asr's `parse_asr_output`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .model import KVCache, Qwen3AsrThinker


@dataclass(frozen=True)
class GenerationConfig:
    """How long to generate and when to stop."""

    max_new_tokens: int = 512
    stop_ids: tuple[int, ...] = ()
    """Ids that end a row (not part of the output): `<|im_end|>`, `<|endoftext|>`."""
    loop_span: int | None = 32
    """A row whose last tokens repeat one pattern of up to `loop_period` tokens over at least
    max(loop_span, 4 x period) tokens is stopped and cut to one copy; None disables it."""
    loop_period: int = 20


class RepetitionGuard:
    """Tracks, per period p, how many trailing tokens equal the token p places before."""

    def __init__(self, span: int, max_period: int) -> None:
        self.span = span
        self.runs = [0] * (max_period + 1)
        self.tokens: list[int] = []

    def push(self, token: int) -> int:
        """Add a token; returns how many trailing tokens to drop (0: no loop)."""
        self.tokens.append(token)
        n = len(self.tokens)
        for p in range(1, len(self.runs)):
            same = n > p and self.tokens[-1] == self.tokens[-1 - p]
            self.runs[p] = self.runs[p] + 1 if same else 0
            stretch = self.runs[p] + p  # trailing tokens with period p
            if stretch >= max(self.span, 4 * p):
                return stretch - p
        return 0


class IncrementalDecoder:
    """Logits of a batch of embedded prompts, then of one new token per row at a time."""

    def __init__(self, thinker: Qwen3AsrThinker, prompts: list[Tensor], reserve: int) -> None:
        self.thinker = thinker
        self.prompts = prompts
        self.lengths = torch.tensor([len(p) for p in prompts])
        self.cache: KVCache = thinker.new_cache(len(prompts), int(self.lengths.max()) + reserve)
        self.steps = 0

    @torch.inference_mode()
    def prefill(self) -> Tensor:
        """Run every prompt [L_b, hidden] alone; logits [B, vocab] of their last positions."""
        end = int(self.lengths.max())
        device = self.prompts[0].device
        hidden = []
        for b, prompt in enumerate(self.prompts):
            n = len(prompt)
            positions = torch.arange(n, device=device)[None]
            columns = slice(end - n, end)
            out = self.thinker.model(prompt[None], positions, self.cache, slice(b, b + 1), columns)
            hidden.append(out[0, -1])
            self.cache.valid[b, columns] = True
        self.cache.length = end
        return self.thinker.logits(torch.stack(hidden))

    @torch.inference_mode()
    def step(self, tokens: Tensor) -> Tensor:
        """Feed one token per row [B]; logits [B, vocab]."""
        cache = self.cache
        cache.reserve(1)
        column = cache.length
        cache.valid[:, column] = True
        x = self.thinker.model.embed_tokens(tokens)[:, None]
        positions = (self.lengths.to(tokens.device) + self.steps)[:, None]
        valid = cache.valid[:, : column + 1]
        mask = None if bool(valid.all()) else valid[:, None, None]
        rows = slice(0, len(tokens))
        out = self.thinker.model(x, positions, cache, rows, slice(column, column + 1), mask)
        cache.length += 1
        self.steps += 1
        return self.thinker.logits(out[:, 0])

    def keep(self, rows: list[int]) -> None:
        """Keep only batch `rows` (finished rows would cost work in every step)."""
        index = torch.tensor(rows, device=self.cache.valid.device)
        self.cache.layers = [(k[index], v[index]) for k, v in self.cache.layers]
        self.cache.valid = self.cache.valid[index]
        self.lengths = self.lengths[index.cpu()]


def greedy_generate(
    thinker: Qwen3AsrThinker, prompts: list[Tensor], config: GenerationConfig
) -> list[list[int]]:
    """Greedy continuation of each embedded prompt [L_b, hidden] until a stop id, the token
    budget or a repetition loop; the generated ids of each row (stop id excluded)."""
    decoder = IncrementalDecoder(thinker, prompts, reserve=min(config.max_new_tokens, 64))
    outputs: list[list[int]] = [[] for _ in prompts]
    guards = [RepetitionGuard(config.loop_span or 0, config.loop_period) for _ in prompts]
    done = [False] * len(prompts)
    rows = list(range(len(prompts)))  # decoder row -> prompt index
    stop = set(config.stop_ids)
    logits = decoder.prefill()
    for step in range(config.max_new_tokens):
        best = logits.argmax(dim=-1).tolist()
        for b, token in zip(rows, best):
            if done[b]:
                continue
            if token in stop:
                done[b] = True
                continue
            outputs[b].append(token)
            cut = guards[b].push(token) if config.loop_span else 0
            if cut:
                del outputs[b][-cut:]
                done[b] = True
        live = [r for r, b in enumerate(rows) if not done[b]]
        if not live or step + 1 == config.max_new_tokens:
            break
        if len(live) < len(rows) and (len(live) <= 3 or 2 * len(live) <= len(rows)):
            decoder.keep(live)
            rows, best = [rows[r] for r in live], [best[r] for r in live]
        logits = decoder.step(torch.tensor(best, device=logits.device))
    return outputs


ASR_TEXT_TAG = "<asr_text>"


def fix_repetitions(text: str, threshold: int = 20) -> str:
    """qwen-asr's `detect_and_fix_repetitions`: a run of more than `threshold` equal characters
    becomes one; a pattern of up to 20 characters repeated `threshold` or more times in a row is
    kept once (the rest of the text is fixed the same way)."""
    runs = []
    i = 0
    while i < len(text):
        count = 1
        while i + count < len(text) and text[i + count] == text[i]:
            count += 1
        runs.append(text[i] if count > threshold else text[i : i + count])
        i += count
    return _fix_patterns("".join(runs), threshold)


def _fix_patterns(s: str, threshold: int, max_len: int = 20) -> str:
    n = len(s)
    if n < 2 * threshold:
        return s
    out = []
    i = 0
    while i <= n - 2 * threshold:
        for k in range(1, max_len + 1):
            if i + k * threshold > n:
                break
            pattern = s[i : i + k]
            if all(s[i + r * k : i + r * k + k] == pattern for r in range(1, threshold)):
                end = i + threshold * k
                while end + k <= n and s[end : end + k] == pattern:
                    end += k
                return "".join(out) + pattern + _fix_patterns(s[end:], threshold, max_len)
        out.append(s[i])
        i += 1
    return "".join(out) + s[i:]


def parse_output(raw: str, forced_language: str | None = None) -> tuple[str, str]:
    """(language name or "", text) of a decoded `language X<asr_text>text` output, as
    qwen-asr's `parse_asr_output`: a forced language makes the whole output the text;
    `language None` (no speech) gives no language."""
    s = raw.strip()
    if not s:
        return "", ""
    s = fix_repetitions(s)
    if forced_language:
        return forced_language, s
    if ASR_TEXT_TAG not in s:
        return "", s.strip()
    meta, text = s.split(ASR_TEXT_TAG, 1)
    if "language none" in meta.lower():
        return "", text.strip()
    language = ""
    for line in meta.splitlines():
        line = line.strip()
        if line.lower().startswith("language "):
            value = line[len("language ") :].strip()
            if value:
                language = value[:1].upper() + value[1:].lower()
            break
    return language, text.strip()
