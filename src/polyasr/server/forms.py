"""The multipart fields of OpenAI's audio routes, checked and turned into `TranscribeOptions`."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from starlette.datastructures import FormData, UploadFile

from ..errors import OptionError
from ..types import DiarizeOptions, TranscribeOptions
from .errors import ApiError

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
GRANULARITIES = ("word", "segment")
FIELDS = frozenset(
    {
        "file",
        "model",
        "language",
        "prompt",
        "response_format",
        "temperature",
        "timestamp_granularities[]",
        "timestamp_granularities",
        "stream",
        "diarize",
    }
)
"""OpenAI's fields, and `diarize` (speakers in every format, not only diarized_json)."""


@dataclass(frozen=True)
class TranscriptionRequest:
    """What one audio request asks for."""

    model: str
    upload: UploadFile
    options: TranscribeOptions
    response_format: str
    words: bool
    stream: bool


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a text field, not a file", param=name)
    return value.strip()


def _flag(form: FormData, name: str) -> bool:
    value = _text(form, name)
    if value is None or value == "":
        return False
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off"):
        return False
    raise ApiError(400, f"{name} must be true or false, not {value!r}", param=name)


def _temperature(form: FormData) -> float | None:
    value = _text(form, "temperature")
    if value is None or value == "":
        return None
    try:
        temperature = float(value)
    except ValueError:
        temperature = math.nan
    if not 0.0 <= temperature <= 1.0:
        raise ApiError(
            400,
            f"temperature must be a number between 0 and 1, not {value!r}",
            param="temperature",
            code="invalid_value",
        )
    return temperature


def _granularities(form: FormData) -> list[str]:
    values = form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities")
    for value in values:
        if value not in GRANULARITIES:
            raise ApiError(
                400,
                f"timestamp_granularities must be word or segment, not {value!r}",
                param="timestamp_granularities",
                code="invalid_value",
            )
    return list(values)


def parse_request(
    form: FormData, task: str, defaults: TranscribeOptions, speakers: DiarizeOptions
) -> TranscriptionRequest:
    """The request a transcription or translation form describes; `ApiError` (400) when a
    field is missing, unknown or invalid."""
    unknown = sorted(set(form.keys()) - FIELDS)
    if unknown:
        raise ApiError(400, f"unknown parameter {unknown[0]!r}", param=unknown[0])
    upload = form.get("file")
    if upload is None:
        raise ApiError(400, "the audio file is missing: send it as the 'file' field", param="file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "'file' must be an uploaded file, not a text field", param="file")
    model = _text(form, "model")
    if not model:
        raise ApiError(400, "the 'model' field is missing (see GET /v1/models)", param="model")
    response_format = _text(form, "response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise ApiError(
            400,
            f"unknown response_format {response_format!r}; use one of: "
            + ", ".join(RESPONSE_FORMATS),
            param="response_format",
            code="invalid_value",
        )
    words = "word" in _granularities(form)
    diarize = response_format == "diarized_json" or _flag(form, "diarize")
    temperature = _temperature(form)
    settings: dict[str, Any] = {"task": task, "word_timestamps": words or defaults.word_timestamps}
    language = _text(form, "language")
    if language:
        settings["language"] = language.lower()
    prompt = _text(form, "prompt")
    if prompt:
        settings["initial_prompt"] = prompt
    if temperature is not None:
        settings["temperatures"] = (temperature,)
    if diarize:
        settings["diarize"] = speakers
    try:
        options = replace(defaults, **settings)
    except OptionError as exc:
        raise ApiError(400, str(exc), code="invalid_option") from None
    return TranscriptionRequest(
        model=model,
        upload=upload,
        options=options,
        response_format=response_format,
        words=words,
        stream=_flag(form, "stream"),
    )
