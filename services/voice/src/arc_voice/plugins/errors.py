"""Arc's typed errors, as the LiveKit Agents errors the framework's retry policy understands."""

from __future__ import annotations

from arc_common.errors import HTTP_STATUS, ArcError, ErrorCode
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError

from arc_voice import metrics


def api_error(exc: ArcError, *, service: str) -> APIError:
    message = f"{service}: {exc.code.value}: {exc.message}"
    metrics.ERRORS.labels(service=service, code=exc.code.value).inc()
    if exc.code is ErrorCode.TIMEOUT:
        return APITimeoutError(message, retryable=exc.retryable)
    if exc.code is ErrorCode.BUSY:
        return APIConnectionError(message, retryable=exc.retryable)
    # An HTTP-like status, so the framework's logs and metrics read naturally.
    return APIStatusError(
        message, status_code=HTTP_STATUS[exc.code], body=exc.code.value, retryable=exc.retryable
    )
