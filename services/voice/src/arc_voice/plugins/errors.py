"""Arc's typed errors, as the LiveKit Agents errors the framework's retry policy understands."""

from __future__ import annotations

from arc_common.errors import ArcError, ErrorCode
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError

# Contract codes as HTTP-like statuses, so the framework's logs and metrics read naturally.
_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED: 415,
    ErrorCode.BUSY: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.CANCELLED: 499,
    ErrorCode.INTERNAL: 500,
}


def api_error(exc: ArcError, *, service: str) -> APIError:
    message = f"{service}: {exc.code.value}: {exc.message}"
    if exc.code is ErrorCode.TIMEOUT:
        return APITimeoutError(message, retryable=exc.retryable)
    if exc.code is ErrorCode.BUSY:
        return APIConnectionError(message, retryable=exc.retryable)
    return APIStatusError(
        message, status_code=_STATUS[exc.code], body=exc.code.value, retryable=exc.retryable
    )
