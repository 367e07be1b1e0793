"""Decoding one batch of 30 s windows: logit filters, greedy/sampling and beam search.

Each decoding rule is a small `LogitFilter`; the token choosers (`GreedyDecoder`,
`BeamSearchDecoder`) only pick tokens. `decode_windows` runs the loop with the KV cache.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch
from torch import Tensor

from .model import Whisper
from .tokenizer import WhisperTokenizer


@dataclass
class DecodeConfig:
    """Settings of one decoding pass (one temperature of the fallback schedule)."""

    temperature: float = 0.0
    beam_size: int = 1
    best_of: int = 1
    patience: float = 1.0
    length_penalty: float | None = None
    sample_len: int = 224
    timestamps: bool = True
    suppress_blank: bool = True
    suppress_tokens: tuple[int, ...] = ()
    max_initial_timestamp_index: int | None = 50
    generator: torch.Generator | None = None


@dataclass
class DecodingResult:
    tokens: list[int]
    """Generated tokens without the prompt and without the final end-of-text."""
    text: str
    avg_logprob: float
    no_speech_prob: float
    temperature: float
    compression_ratio: float


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class LogitFilter:
    def apply(self, logits: Tensor, tokens: Tensor, sample_begin: int) -> None:
        """Mask `logits` [N, V] in place given the tokens so far [N, L]."""
        raise NotImplementedError


class SuppressBlank(LogitFilter):
    """No blank or end-of-text as the first generated token."""

    def __init__(self, tokenizer: WhisperTokenizer) -> None:
        self.ids = tokenizer.encode(" ") + [tokenizer.eot]

    def apply(self, logits: Tensor, tokens: Tensor, sample_begin: int) -> None:
        if tokens.shape[1] == sample_begin:
            logits[:, self.ids] = -torch.inf


class SuppressTokens(LogitFilter):
    def __init__(self, ids: tuple[int, ...]) -> None:
        self.ids = torch.tensor(sorted(set(ids)), dtype=torch.long)

    def apply(self, logits: Tensor, tokens: Tensor, sample_begin: int) -> None:
        logits[:, self.ids.to(logits.device)] = -torch.inf


class ApplyTimestampRules(LogitFilter):
    """Timestamps come in increasing pairs; text is followed by a timestamp or end-of-text."""

    def __init__(self, tokenizer: WhisperTokenizer, max_initial_index: int | None) -> None:
        self.tok = tokenizer
        self.max_initial_index = max_initial_index

    def apply(self, logits: Tensor, tokens: Tensor, sample_begin: int) -> None:
        tok, ts_begin = self.tok, self.tok.timestamp_begin
        logits[:, tok.no_timestamps] = -torch.inf
        for k in range(tokens.shape[0]):
            seq = tokens[k, sample_begin:].tolist()
            last_was_ts = len(seq) >= 1 and seq[-1] >= ts_begin
            penultimate_was_ts = len(seq) < 2 or seq[-2] >= ts_begin
            if last_was_ts:
                if penultimate_was_ts:
                    logits[k, ts_begin:] = -torch.inf
                else:
                    logits[k, : tok.eot] = -torch.inf
            stamps = [t for t in seq if t >= ts_begin]
            if stamps:
                # Never go back in time; a segment that just opened must have non-zero length.
                last = stamps[-1] if (last_was_ts and not penultimate_was_ts) else stamps[-1] + 1
                logits[k, ts_begin:last] = -torch.inf
        if tokens.shape[1] == sample_begin:
            logits[:, :ts_begin] = -torch.inf
            if self.max_initial_index is not None:
                logits[:, ts_begin + self.max_initial_index + 1 :] = -torch.inf
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        ts_logprob = logprobs[:, ts_begin:].logsumexp(dim=-1)
        text_max = logprobs[:, :ts_begin].max(dim=-1).values
        logits[ts_logprob > text_max, :ts_begin] = -torch.inf


class GreedyDecoder:
    """Argmax at temperature 0, else sampling; finished rows keep emitting end-of-text."""

    def __init__(self, temperature: float, eot: int, generator: torch.Generator | None) -> None:
        self.temperature, self.eot, self.generator = temperature, eot, generator

    def reset(self) -> None:
        pass

    def update(
        self, tokens: Tensor, logits: Tensor, sum_logprobs: Tensor
    ) -> tuple[Tensor, bool, Tensor | None]:
        if self.temperature == 0:
            next_tokens = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(logits / self.temperature, dim=-1)
            next_tokens = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
        logprobs = torch.log_softmax(logits, dim=-1)
        current = logprobs.gather(1, next_tokens[:, None]).squeeze(1)
        finished = tokens[:, -1] == self.eot
        sum_logprobs += current * ~finished
        next_tokens[finished] = self.eot
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=1)
        return tokens, bool((tokens[:, -1] == self.eot).all()), None

    def finalize(
        self, tokens: Tensor, sum_logprobs: Tensor, n_audio: int
    ) -> tuple[list[list[list[int]]], list[list[float]]]:
        tokens = torch.cat([tokens, torch.full_like(tokens[:, :1], self.eot)], dim=1)
        per_audio = tokens.view(n_audio, -1, tokens.shape[1])
        scores = sum_logprobs.view(n_audio, -1)
        return [[row.tolist() for row in group] for group in per_audio], scores.tolist()


class BeamSearchDecoder:
    """openai's beam search: keep `beam_size` live hypotheses per audio until enough finish."""

    def __init__(self, beam_size: int, eot: int, patience: float) -> None:
        self.beam_size, self.eot = beam_size, eot
        self.max_candidates = round(beam_size * patience)
        self.finished: list[dict[tuple[int, ...], float]] = []

    def reset(self) -> None:
        self.finished = []

    def update(
        self, tokens: Tensor, logits: Tensor, sum_logprobs: Tensor
    ) -> tuple[Tensor, bool, Tensor]:
        n_audio = tokens.shape[0] // self.beam_size
        if not self.finished:
            self.finished = [{} for _ in range(n_audio)]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        top_lp, top_ids = logprobs.topk(self.beam_size + 1, dim=-1)
        top_lp, top_ids = top_lp.tolist(), top_ids.tolist()
        base = sum_logprobs.tolist()
        rows = tokens.tolist()
        next_rows, source, new_scores = [], [], []
        for a in range(n_audio):
            scores: dict[tuple[int, ...], float] = {}
            origin: dict[tuple[int, ...], int] = {}
            for j in range(self.beam_size):
                idx = a * self.beam_size + j
                prefix = rows[idx]
                for lp, token in zip(top_lp[idx], top_ids[idx]):
                    seq = tuple(prefix + [token])
                    scores[seq] = base[idx] + lp
                    origin[seq] = idx
            kept = 0
            for seq in sorted(scores, key=scores.get, reverse=True):
                if seq[-1] == self.eot:
                    if len(self.finished[a]) < self.max_candidates:
                        self.finished[a][seq] = scores[seq]
                else:
                    next_rows.append(list(seq))
                    source.append(origin[seq])
                    new_scores.append(scores[seq])
                    kept += 1
                    if kept == self.beam_size:
                        break
        tokens = torch.tensor(next_rows, dtype=tokens.dtype, device=tokens.device)
        sum_logprobs.copy_(torch.tensor(new_scores, dtype=sum_logprobs.dtype))
        done = all(len(f) >= self.max_candidates for f in self.finished)
        return tokens, done, torch.tensor(source, device=tokens.device)

    def finalize(
        self, tokens: Tensor, sum_logprobs: Tensor, n_audio: int
    ) -> tuple[list[list[list[int]]], list[list[float]]]:
        scores = sum_logprobs.tolist()
        rows = tokens.tolist()
        all_tokens, all_scores = [], []
        for a in range(n_audio):
            finished = dict(self.finished[a]) if self.finished else {}
            if len(finished) < self.beam_size:
                order = sorted(range(self.beam_size), key=lambda j: -scores[a * self.beam_size + j])
                for j in order:
                    seq = tuple(rows[a * self.beam_size + j] + [self.eot])
                    finished[seq] = scores[a * self.beam_size + j]
                    if len(finished) >= self.beam_size:
                        break
            all_tokens.append([list(s) for s in finished])
            all_scores.append(list(finished.values()))
        return all_tokens, all_scores


def rank(sequences: list[list[int]], scores: list[float], length_penalty: float | None) -> int:
    """Index of the best candidate by length-normalized log-probability."""

    def score(i: int) -> float:
        length = len(sequences[i])
        penalty = length if length_penalty is None else ((5 + length) / 6) ** length_penalty
        return scores[i] / penalty

    return max(range(len(sequences)), key=score)


def build_filters(tokenizer: WhisperTokenizer, config: DecodeConfig) -> list[LogitFilter]:
    filters: list[LogitFilter] = []
    if config.suppress_blank:
        filters.append(SuppressBlank(tokenizer))
    if config.suppress_tokens:
        filters.append(SuppressTokens(config.suppress_tokens))
    if config.timestamps:
        filters.append(ApplyTimestampRules(tokenizer, config.max_initial_timestamp_index))
    return filters


@torch.inference_mode()
def decode_windows(
    model: Whisper,
    tokenizer: WhisperTokenizer,
    audio_states: Tensor,
    prompt: list[int],
    config: DecodeConfig,
) -> list[DecodingResult]:
    """Decode each window of `audio_states` [B, 1500, d] after the same `prompt` tokens."""
    n_audio = audio_states.shape[0]
    if config.beam_size > 1 and config.temperature == 0:
        n_group = config.beam_size
        chooser: GreedyDecoder | BeamSearchDecoder = BeamSearchDecoder(
            config.beam_size, tokenizer.eot, config.patience
        )
    else:
        n_group = config.best_of if config.temperature > 0 else 1
        chooser = GreedyDecoder(config.temperature, tokenizer.eot, config.generator)
    n_ctx = model.dims.n_text_ctx
    sample_len = min(config.sample_len, n_ctx - len(prompt))
    sample_begin = len(prompt)
    sot_index = prompt.index(tokenizer.sot)
    filters = build_filters(tokenizer, config)

    cache = model.new_cache(n_audio * n_group)
    model.decoder.set_audio(cache, audio_states)  # shared by the n_group rows of each window
    tokens = torch.tensor([prompt], device=audio_states.device).repeat(n_audio * n_group, 1)
    sum_logprobs = torch.zeros(n_audio * n_group, device=audio_states.device)

    hidden, _ = model.decoder(tokens, cache)
    no_speech = model.decoder.logits(hidden[:, sot_index]).softmax(dim=-1)[:, tokenizer.no_speech]
    logits = model.decoder.logits(hidden[:, -1])
    for _ in range(sample_len):
        for f in filters:
            f.apply(logits, tokens, sample_begin)
        tokens, done, source = chooser.update(tokens, logits, sum_logprobs)
        if source is not None:
            cache.reorder(source)
        if done or tokens.shape[1] >= n_ctx:
            break
        hidden, _ = model.decoder(tokens[:, -1:], cache)
        logits = model.decoder.logits(hidden[:, -1])

    candidates, scores = chooser.finalize(tokens, sum_logprobs, n_audio)
    results = []
    for a in range(n_audio):
        seqs = []
        for seq in candidates[a]:
            gen = seq[sample_begin:]
            seqs.append(gen[: gen.index(tokenizer.eot)] if tokenizer.eot in gen else gen)
        best = rank(seqs, scores[a], config.length_penalty)
        text = tokenizer.decode(seqs[best]).strip()
        results.append(
            DecodingResult(
                tokens=seqs[best],
                text=text,
                avg_logprob=scores[a][best] / (len(seqs[best]) + 1),
                no_speech_prob=float(no_speech[a * n_group]),
                temperature=config.temperature,
                compression_ratio=compression_ratio(text),
            )
        )
    return results
