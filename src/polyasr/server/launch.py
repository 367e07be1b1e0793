"""`polyasr serve`: load the models once, build the app, run it with uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import OptionError
from .app import create_app
from .config import ServerConfig


def model_id(spec: str) -> tuple[str, str]:
    """(id, what to load) of a `--model` value: `NAME=PATH`, a path (its folder or file name
    without suffix) or a short name / hub id (itself)."""
    name, sep, target = spec.partition("=")
    if sep and name and target:
        return name, target
    path = Path(spec)
    if path.exists():
        return (path.stem if path.is_file() else path.resolve().name), spec
    return spec, spec


def serve(
    specs: list[str],
    config: ServerConfig,
    host: str,
    port: int,
    device: str = "auto",
    dtype: str | None = None,
) -> None:
    """Load every model, then serve until interrupted."""
    import uvicorn

    from ..registry import load

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    models: dict[str, Any] = {}
    for spec in specs:
        name, target = model_id(spec)
        if name in models:
            raise OptionError(f"two models are named {name!r}; name them with --model ID=PATH")
        models[name] = load(target, device=device, dtype=dtype)
        logging.getLogger("polyasr.server").info("loaded %s as %r", target, name)
    app = create_app(models, config)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
