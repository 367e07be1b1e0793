"""Greedy CTC and RNN-T decoding with the frame of every emitted token."""

from __future__ import annotations

import torch
from torch import Tensor

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
    head: RNNTHead, states: Tensor, length: int, blank: int, max_symbols: int = 10
) -> tuple[list[int], list[int]]:
    """One utterance: at each frame emit up to `max_symbols` labels until blank wins.

    The prediction network starts from a zero input vector and zero state, and advances only
    when a label is emitted. states: [T', d].
    """
    enc = head.joint.enc(states[:length])  # [T', H]
    linear = head.joint.joint_net[1]
    lstm = head.decoder.lstm
    x = states.new_zeros(1, 1, lstm.input_size)
    g, state = lstm(x)
    pred = head.joint.pred(g[0, 0])
    tokens: list[int] = []
    frames: list[int] = []
    for t in range(enc.shape[0]):
        for _ in range(max_symbols):
            k = int(linear(torch.relu(enc[t] + pred)).argmax())
            if k == blank:
                break
            tokens.append(k)
            frames.append(t)
            g, state = lstm(head.decoder.embed.weight[k].view(1, 1, -1), state)
            pred = head.joint.pred(g[0, 0])
    return tokens, frames
