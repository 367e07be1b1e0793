"""Language facts shared by the families and the pipeline."""

from __future__ import annotations

UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})
"""Scripts without spaces between words: their text is joined without spaces and their word
timestamps are split per character."""
