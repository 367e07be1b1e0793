"""polyasr's cache folder, shared by everything it downloads or derives (speaker models,
memory-mappable copies of checkpoints)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`POLYASR_CACHE` if set, else the platform's user cache folder for polyasr
    (`$XDG_CACHE_HOME/polyasr` or `~/.cache/polyasr` on Linux)."""
    configured = os.environ.get("POLYASR_CACHE")
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("polyasr"))
