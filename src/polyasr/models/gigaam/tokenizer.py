"""GigaAM tokenizers: a character list (v3_ctc, v3_rnnt) or SentencePiece (e2e models)."""

from __future__ import annotations

from ...errors import ModelError


class GigaAMTokenizer:
    """Ids <-> text, and which ids start a new word (for word timestamps)."""

    def __init__(self, vocabulary: list[str] | None = None, sp_model: bytes | None = None) -> None:
        self.vocabulary = vocabulary
        self.sp = None
        if sp_model is not None:
            import sentencepiece

            try:
                self.sp = sentencepiece.SentencePieceProcessor(model_proto=sp_model)
            except (OSError, RuntimeError, TypeError) as exc:
                raise ModelError(f"cannot read the SentencePiece tokenizer model: {exc}") from None
        elif vocabulary is None:
            raise ModelError("GigaAM checkpoint has neither a vocabulary nor a tokenizer model")

    def __len__(self) -> int:
        return self.sp.get_piece_size() if self.sp is not None else len(self.vocabulary)

    def decode(self, ids: list[int]) -> str:
        if self.sp is not None:
            return self.sp.decode(ids)
        return "".join(self.vocabulary[i] for i in ids)

    def words(self, ids: list[int]) -> list[tuple[str, list[int]]]:
        """Split ids into words: (text, indices into `ids`) for each non-empty word."""
        groups: list[list[int]] = []
        for i, token in enumerate(ids):
            if self.sp is not None:
                piece = self.sp.id_to_piece(token)
                if piece.startswith("▁") or not groups:
                    groups.append([])
                groups[-1].append(i)
            elif self.vocabulary[token] == " ":
                groups.append([])
            else:
                if not groups:
                    groups.append([])
                groups[-1].append(i)
        result = []
        for group in groups:
            text = self.decode([ids[i] for i in group]).strip()
            if text:
                result.append((text, group))
        return result
