"""Word error rate with a simple, language-neutral text normalization."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s']|_")


def normalize_text(text: str) -> str:
    """Lower-case, strip punctuation and collapse whitespace (Unicode-aware)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("ё", "е")
    text = _PUNCT.sub(" ", text).replace("'", "")
    return " ".join(text.split())


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two token lists."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(references: list[str] | str, hypotheses: list[str] | str) -> float:
    """Corpus WER: total word edits over total reference words, after normalization."""
    if isinstance(references, str):
        references, hypotheses = [references], [hypotheses]
    if len(references) != len(hypotheses):
        raise ValueError("references and hypotheses differ in length")
    edits = words = 0
    for ref, hyp in zip(references, hypotheses):
        r, h = normalize_text(ref).split(), normalize_text(hyp).split()
        edits += edit_distance(r, h)
        words += len(r)
    return edits / max(words, 1)


def agreement(reference: str, hypothesis: str) -> float:
    """How much of `reference` a hypothesis keeps, by characters: 1 - CER, at least 0. Tells a
    quantized model's output from its full-precision one's (same tokenizer, same text)."""
    if not reference:
        return float(not hypothesis)
    return max(0.0, 1 - edit_distance(list(reference), list(hypothesis)) / len(reference))
