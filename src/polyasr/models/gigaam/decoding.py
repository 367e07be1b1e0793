"""Greedy CTC and RNN-T decoding with the frame of every emitted token."""

from __future__ import annotations

import torch
from torch import Tensor

from ..transducer import lstm_step
from .model import RNNTHead


def ctc_greedy(log_probs: Tensor, length: int, blank: int) -> tuple[list[int], list[int]]:
    """Collapse repeats and drop blanks; a token's frame is the first frame of its run."""
    best = log_probs[:length].argmax(dim=-1).tolist()
    tokens, frames = [], []
    previous = None
    for t, k in enumerate(best):
        if k != blank and k != previous:
            tokens.append(k)
            frames.append(t)
        previous = k
    return tokens, frames


@torch.inference_mode()
def rnnt_greedy(
    head: RNNTHead, states: Tensor, lengths: Tensor, blank: int, max_symbols: int = 10
) -> list[tuple[list[int], list[int]]]:
    """Greedy transducer decoding of a batch, frame by frame for all utterances at once.

    At each frame an utterance emits labels until blank wins or `max_symbols` were emitted;
    its prediction network (zero input vector and zero state at the start) advances only when
    it emits. Per utterance this is exactly the reference's loop; batching the rows turns the
    Python-level loop over utterances into tensor operations. states: [B, T', d].
    """
    batch = states.shape[0]
    enc = head.joint.enc(states)  # [B, T', H]
    out_layer = head.joint.joint_net[1]
    lstm, embed = head.decoder.lstm, head.decoder.embed.weight
    h = states.new_zeros(lstm.num_layers, batch, lstm.hidden_size)
    g, h, c = lstm_step(lstm, states.new_zeros(batch, lstm.input_size), h, torch.zeros_like(h))
    pred = head.joint.pred(g)  # [B, H]
    tokens: list[list[int]] = [[] for _ in range(batch)]
    frames: list[list[int]] = [[] for _ in range(batch)]
    for t in range(int(lengths.max()) if batch else 0):
        active = lengths > t
        for _ in range(max_symbols):
            best = out_layer(torch.relu(enc[:, t] + pred)).argmax(dim=-1)  # [B]
            emit = active & (best != blank)
            if not bool(emit.any()):
                break
            for b in emit.nonzero()[:, 0].tolist():
                tokens[b].append(int(best[b]))
                frames[b].append(t)
            g, h2, c2 = lstm_step(lstm, embed[best], h, c)
            keep = emit[None, :, None]
            h, c = torch.where(keep, h2, h), torch.where(keep, c2, c)
            pred = torch.where(emit[:, None], head.joint.pred(g), pred)
            active = emit
    return list(zip(tokens, frames))
