"""Where the speaker models come from: a local file (an option or an environment variable), or
their official sources, downloaded once into a cache. Files are recognized by SHA-256, so any
copy of the published file is accepted; another file is used with a warning."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..user_cache import cache_root


@dataclass(frozen=True)
class SpeakerModel:
    name: str
    filename: str
    sha256: str
    variable: str
    """Environment variable that names a local copy."""
    option: str
    """CLI option that names a local copy."""
    hub_repo: str | None = None
    url: str | None = None


SEGMENTATION = SpeakerModel(
    name="pyannote/segmentation-3.0",
    filename="pytorch_model.bin",
    sha256="da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298",
    variable="POLYASR_SEGMENTATION_MODEL",
    option="--segmentation-model PATH",
    hub_repo="pyannote/segmentation-3.0",
)
CAMPLUS = SpeakerModel(
    name="CAM++ (iic/speech_campplus_sv_zh_en_16k-common_advanced on ModelScope)",
    filename="campplus_cn_en_common.pt",
    sha256="92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    variable="POLYASR_EMBEDDING_MODEL",
    option="--embedding-model PATH",
    url="https://modelscope.cn/api/v1/models/iic/speech_campplus_sv_zh_en_16k-common_advanced/"
    "repo?Revision=v1.0.0&FilePath=campplus_cn_en_common.pt",
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_file(model: SpeakerModel, path: str | os.PathLike[str] | None = None) -> Path:
    """The file of `model`: `path`, else the environment variable's, else the cached or
    downloaded official file."""
    chosen = path or os.environ.get(model.variable)
    if chosen:
        local = Path(chosen).expanduser()
        if local.is_dir():
            local = local / model.filename
        if not local.is_file():
            raise ModelError(f"{model.name} model file not found: {local}")
        if sha256(local) != model.sha256:
            warnings.warn(
                f"{local} is not the published {model.name} file (SHA-256 differs); using it",
                stacklevel=2,
            )
        return local
    if model.hub_repo:
        from ..hub import download

        found = download(model.hub_repo, local=model.option) / model.filename
        if not found.is_file():
            raise ModelError(f"{model.hub_repo} on the hub has no {model.filename}")
        return found
    return _fetch(model)


def _fetch(model: SpeakerModel) -> Path:
    """Download `model.url` once into polyasr's cache, checked against its SHA-256."""
    import pooch

    cache = cache_root()
    try:
        return Path(
            pooch.retrieve(
                model.url,
                known_hash=f"sha256:{model.sha256}",
                fname=model.filename,
                path=cache,
                progressbar=False,
            )
        )
    except ValueError as exc:  # the hash does not match
        raise ModelError(f"the downloaded {model.name} is not the published file: {exc}") from None
    except OSError as exc:  # requests' connection and HTTP errors, file system errors
        raise ModelError(
            f"cannot download {model.name} ({type(exc).__name__}); pass a local copy with "
            f"{model.option} or set {model.variable}"
        ) from None
