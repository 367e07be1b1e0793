"""Greedy Token-and-Duration Transducer decoding, batched (NeMo's label-looping rules).

One decoding step updates the batch's state tensors in place, so the same step runs eagerly
on the CPU and, on CUDA, is captured once as a CUDA graph and replayed: a step is a few dozen
tiny kernels, whose launch overhead would otherwise dominate GPU decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..transducer import lstm_step
from .model import ParakeetTDT
from .tokenizer import TokenSpan

REPLAYS_PER_CHECK = 16  # CUDA graph replays between two "all finished?" checks


@dataclass
class _Batch:
    """Decoding state of a batch; `_step` updates every tensor in place."""

    enc: Tensor  # [B, T', H] encoder frames through the joint's encoder projection
    lengths: Tensor  # [B]
    last: Tensor  # [B] last valid frame (0 for an empty utterance)
    rows: Tensor  # [B] 0 ... B-1, to pick each utterance's current frame
    t: Tensor  # [B] current frame
    repeats: Tensor  # [B] tokens emitted in a row at the current frame with duration 0
    h: Tensor  # [layers, B, H] prediction network state
    c: Tensor
    pred: Tensor  # [B, H] joint's projection of the prediction network output
    record: Tensor  # [capacity, 4, B]: emitted?, token, frame, duration of every step
    count: Tensor  # [] steps recorded

    def finished(self) -> bool:
        return not bool((self.t < self.lengths).any())


def _start(model: ParakeetTDT, states: Tensor, lengths: Tensor, capacity: int) -> _Batch:
    """Frame 0 and the prediction network after its zero start input, for every utterance."""
    batch, device = states.shape[0], states.device
    lstm = model.decoder.prediction.dec_rnn.lstm
    h = states.new_zeros(lstm.num_layers, batch, lstm.hidden_size)
    g, h, c = lstm_step(lstm, states.new_zeros(batch, lstm.input_size), h, torch.zeros_like(h))
    t = torch.zeros(batch, dtype=torch.long, device=device)
    lengths = lengths.to(device)
    return _Batch(
        enc=model.joint.enc(states),
        lengths=lengths,
        last=(lengths - 1).clamp(min=0),
        rows=torch.arange(batch, device=device),
        t=t,
        repeats=torch.zeros_like(t),
        h=h,
        c=c,
        pred=model.joint.pred(g),
        record=torch.zeros(capacity, 4, batch, dtype=torch.long, device=device),
        count=torch.zeros((), dtype=torch.long, device=device),
    )


def _step(model: ParakeetTDT, s: _Batch, durations: Tensor, max_symbols: int, lazy: bool) -> None:
    """One label-looping step for all utterances (finished ones are left unchanged).

    `lazy` skips the prediction network when nothing was emitted; it needs a host sync, so
    the graph-captured step runs it unconditionally (its results are discarded anyway).
    """
    blank = model.dims.blank
    logits = model.joint(s.enc[s.rows, torch.minimum(s.t, s.last)], s.pred)
    token = logits[:, : blank + 1].argmax(dim=-1)
    duration = durations[logits[:, blank + 1 :].argmax(dim=-1)]
    active = s.t < s.lengths
    emit = active & (token != blank)
    decision = torch.stack([emit.long(), token, s.t, duration])[None]
    s.record.index_copy_(0, s.count[None], decision)
    s.count.add_(1)
    if not lazy or bool(emit.any()):
        lstm = model.decoder.prediction.dec_rnn.lstm
        embed = model.decoder.prediction.embed.weight
        g, h, c = lstm_step(lstm, embed[token], s.h, s.c)
        keep = emit[None, :, None]
        s.h.copy_(torch.where(keep, h, s.h))
        s.c.copy_(torch.where(keep, c, s.c))
        s.pred.copy_(torch.where(emit[:, None], model.joint.pred(g), s.pred))
    repeats = torch.where(emit & (duration == 0), s.repeats + 1, 0)
    forced = repeats >= max_symbols
    advance = torch.where(forced, 1, torch.where(emit, duration, duration.clamp(min=1)))
    s.repeats.copy_(torch.where(forced, 0, repeats))
    s.t.copy_(torch.where(active, s.t + advance, s.t))


@torch.inference_mode()
def tdt_greedy(
    model: ParakeetTDT,
    states: Tensor,
    lengths: Tensor,
    max_symbols: int = 10,
    cuda_graph: bool = True,
) -> list[list[TokenSpan]]:
    """Tokens with (emission frame, frame + duration) for each utterance of a batch.

    Per utterance: at frame t the joint picks a token and, independently, a duration d. Blank
    moves t by max(d, 1) without touching the prediction network; a token is emitted, advances
    the LSTM and moves t by d. After `max_symbols` tokens in a row with d = 0 the frame is
    forced forward by one. All utterances step together, each at its own frame.
    states: [B, T', d] encoder output; lengths: [B] valid frames. On CUDA the step runs as a
    CUDA graph unless `cuda_graph` is False.
    """
    durations = torch.tensor(model.dims.durations, device=states.device)
    # Every step advances a frame or emits; at most max_symbols emissions stay on one frame.
    capacity = int(lengths.max()) * (max_symbols + 1) + REPLAYS_PER_CHECK + 1
    s = _start(model, states, lengths, capacity)
    if states.is_cuda and cuda_graph:
        _run_graph(model, s, durations, max_symbols, capacity)
    else:
        while not s.finished():
            _step(model, s, durations, max_symbols, lazy=True)
    return _spans(s.record[: int(s.count)], states.shape[0])


def _run_graph(
    model: ParakeetTDT, s: _Batch, durations: Tensor, max_symbols: int, capacity: int
) -> None:
    """Capture one step as a CUDA graph and replay it until every utterance is finished."""
    initial = [x.clone() for x in (s.t, s.repeats, s.h, s.c, s.pred, s.count)]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture, as CUDA graphs require
        _step(model, s, durations, max_symbols, lazy=False)
    torch.cuda.current_stream().wait_stream(side)
    for x, x0 in zip((s.t, s.repeats, s.h, s.c, s.pred, s.count), initial):
        x.copy_(x0)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        _step(model, s, durations, max_symbols, lazy=False)
    replays = 0
    while not s.finished() and replays + REPLAYS_PER_CHECK <= capacity:
        for _ in range(REPLAYS_PER_CHECK):
            graph.replay()
        replays += REPLAYS_PER_CHECK


def _spans(record: Tensor, batch: int) -> list[list[TokenSpan]]:
    """Per-utterance token spans from the recorded per-step decisions (one device transfer)."""
    result: list[list[TokenSpan]] = [[] for _ in range(batch)]
    emitted, tokens, frames, durations = record.permute(1, 2, 0).cpu().tolist()  # [4][B][S]
    for b in range(batch):
        for e, k, f, d in zip(emitted[b], tokens[b], frames[b], durations[b]):
            if e:
                result[b].append(TokenSpan(k, f, f + d))
    return result
