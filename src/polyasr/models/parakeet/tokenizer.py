"""Parakeet's SentencePiece tokenizer: text, punctuation spacing and NeMo's word grouping."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ...errors import ModelError


@dataclass
class TokenSpan:
    """One emitted token and its span in encoder frames (TDT: emission frame + duration)."""

    id: int
    start: int
    end: int


class ParakeetTokenizer:
    """Ids -> text as NeMo's RNN-T decoding renders them, and tokens -> words with frame spans."""

    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(model_proto)
        except (RuntimeError, OSError) as exc:
            raise ModelError(f"cannot read the SentencePiece tokenizer: {exc}") from None
        self.punctuation = self._vocabulary_punctuation()
        marks = "".join(re.escape(p) for p in sorted(self.punctuation))
        self._space_before = re.compile(rf"\s([{marks}])") if marks else None

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def _vocabulary_punctuation(self) -> set[str]:
        """Punctuation characters in ordinary pieces (NeMo's `extract_punctuation_from_vocab`)."""
        found = set()
        for i in range(len(self)):
            piece = self.sp.id_to_piece(i)
            if piece.startswith(("<", "[", "##", "▁")):
                continue
            found.update(ch for ch in piece if unicodedata.category(ch).startswith("P"))
        return found

    def decode(self, ids: list[int]) -> str:
        """Text of token ids; one space before each punctuation mark is removed."""
        text = self.sp.decode_pieces([self.sp.id_to_piece(i) for i in ids])
        return self._space_before.sub(r"\1", text) if self._space_before else text

    def words(self, tokens: list[TokenSpan]) -> list[tuple[str, int, int]]:
        """(word, start frame, end frame) in NeMo's rules: a piece whose text differs from its
        decoded text (a leading ▁) starts a word; punctuation joins the current or previous
        word and takes the previous token's end as its own span."""
        spans = [TokenSpan(t.id, t.start, t.end) for t in tokens]
        texts = [self.sp.decode([t.id]) for t in spans]
        pieces = [self.sp.id_to_piece(t.id) for t in spans]
        for i in range(1, len(spans)):
            if texts[i][:1] in self.punctuation:
                spans[i].start = spans[i].end = spans[i - 1].end
        words: list[list] = []  # [text, start, end]
        built: list[str] = []
        first = 0
        for i, (text, piece) in enumerate(zip(texts, pieces)):
            punctuation = text in self.punctuation
            if not punctuation and piece != text:
                if built:
                    words.append(
                        [self.sp.decode_pieces(built), spans[first].start, spans[i - 1].end]
                    )
                built, first = [piece], i
            elif punctuation and not built and words:
                words[-1][0] = words[-1][0].removesuffix(" ") + text
                words[-1][2] = spans[i].end
            elif punctuation and built:
                if built[-1] in (" ", "_", "▁"):
                    built.pop()
                built.append(piece)
            else:
                if not built:
                    first = i
                built.append(piece)
        if built:
            start = spans[first].start if words else spans[0].start
            words.append([self.sp.decode_pieces(built), start, spans[-1].end])
        if words:
            words[0][1] = spans[0].start
        return [(text, start, end) for text, start, end in words]
