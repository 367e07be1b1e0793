"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from typing import Any

from ..errors import AudioError, ModelError, OptionError, PolyasrError


class ApiError(Exception):
    """A request that cannot be served, with the HTTP status and the fields OpenAI sends."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI's clients parse."""
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def from_polyasr(exc: PolyasrError) -> ApiError:
    """The HTTP answer to an error polyasr raised for this request's audio or options."""
    if isinstance(exc, AudioError):
        return ApiError(400, str(exc), param="file", code="invalid_audio")
    if isinstance(exc, OptionError):
        return ApiError(400, str(exc), code="invalid_option")
    if isinstance(exc, ModelError):
        return ApiError(500, str(exc), code="model_error", kind="server_error")
    return ApiError(422, str(exc), code="unprocessable")
