"""Greedy Token-and-Duration Transducer decoding, batched (NeMo's label-looping rules)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..transducer import lstm_step
from .model import ParakeetTDT
from .tokenizer import TokenSpan


@torch.inference_mode()
def tdt_greedy(
    model: ParakeetTDT, states: Tensor, lengths: Tensor, max_symbols: int = 10
) -> list[list[TokenSpan]]:
    """Tokens with (emission frame, frame + duration) for each utterance of a batch.

    Per utterance: at frame t the joint picks a token and, independently, a duration d. Blank
    moves t by max(d, 1) without touching the prediction network; a token is emitted, advances
    the LSTM and moves t by d. After `max_symbols` tokens in a row with d = 0 the frame is
    forced forward by one. All utterances step together, each at its own frame.
    states: [B, T', d] encoder output; lengths: [B] valid frames.
    """
    dims = model.dims
    batch, device = states.shape[0], states.device
    enc = model.joint.enc(states)  # [B, T', H]
    durations = torch.tensor(dims.durations, device=device)
    prediction = model.decoder.prediction
    lstm, embed = prediction.dec_rnn.lstm, prediction.embed.weight
    h = states.new_zeros(lstm.num_layers, batch, lstm.hidden_size)
    g, h, c = lstm_step(lstm, states.new_zeros(batch, lstm.input_size), h, torch.zeros_like(h))
    pred = model.joint.pred(g)
    rows = torch.arange(batch, device=device)
    lengths = lengths.to(device)
    last = (lengths - 1).clamp(min=0)
    t = torch.zeros(batch, dtype=torch.long, device=device)
    repeats = torch.zeros_like(t)
    steps: list[Tensor] = []  # per step: [4, B] = emitted?, token, frame, duration
    active = t < lengths
    while bool(active.any()):
        logits = model.joint(enc[rows, torch.minimum(t, last)], pred)
        token = logits[:, : dims.blank + 1].argmax(dim=-1)
        duration = durations[logits[:, dims.blank + 1 :].argmax(dim=-1)]
        emit = active & (token != dims.blank)
        steps.append(torch.stack([emit.long(), token, t, duration]))
        if bool(emit.any()):
            g, h2, c2 = lstm_step(lstm, embed[token], h, c)
            keep = emit[None, :, None]
            h, c = torch.where(keep, h2, h), torch.where(keep, c2, c)
            pred = torch.where(emit[:, None], model.joint.pred(g), pred)
        stay = emit & (duration == 0)
        repeats = torch.where(stay, repeats + 1, 0)
        forced = repeats >= max_symbols
        advance = torch.where(emit, duration, duration.clamp(min=1))
        advance = torch.where(forced, 1, advance)
        repeats = torch.where(forced, 0, repeats)
        t = torch.where(active, t + advance, t)
        active = t < lengths
    return _spans(steps, batch)


def _spans(steps: list[Tensor], batch: int) -> list[list[TokenSpan]]:
    """Per-utterance token spans from the stacked per-step decisions (one device transfer)."""
    result: list[list[TokenSpan]] = [[] for _ in range(batch)]
    if not steps:
        return result
    emitted, tokens, frames, durations = torch.stack(steps, dim=-1).cpu().tolist()  # [4][B][S]
    for b in range(batch):
        for e, k, f, d in zip(emitted[b], tokens[b], frames[b], durations[b]):
            if e:
                result[b].append(TokenSpan(k, f, f + d))
    return result
