"""A model as read from its files, whatever their format. Every family loads in two steps:
`read` turns the published files into a `Checkpoint`, `build` turns a `Checkpoint` into a
recognizer (through `materialize`). Another file format only needs its own `read`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class Checkpoint:
    """What a family's `build` needs: its settings, its weights and its other files."""

    family: str
    config: dict[str, Any]
    """The family's settings as plain data (the published config files' contents)."""
    state: dict[str, Tensor]
    """Weights under the model's parameter names (the published names, root prefix removed)."""
    assets: dict[str, bytes] = field(default_factory=dict)
    """Other files by name, such as the tokenizer."""
    source: str = ""
    """Where it was read from, for messages."""
