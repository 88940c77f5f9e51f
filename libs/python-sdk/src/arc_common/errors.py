"""Typed errors that carry a contract error code and whether a retry can help."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"
    BUSY = "busy"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


# A retry can only help when the failure was about capacity or time, never about the input.
_RETRYABLE = frozenset({ErrorCode.BUSY, ErrorCode.TIMEOUT, ErrorCode.INTERNAL})

# How each contract code reads as an HTTP status, the same on every service's HTTP routes
# (499 is the de-facto "client closed request").
HTTP_STATUS: Mapping[ErrorCode, int] = MappingProxyType(
    {
        ErrorCode.BAD_REQUEST: 400,
        ErrorCode.TOO_LARGE: 413,
        ErrorCode.UNSUPPORTED: 422,
        ErrorCode.BUSY: 503,
        ErrorCode.TIMEOUT: 504,
        ErrorCode.CANCELLED: 499,
        ErrorCode.INTERNAL: 500,
    }
)


class ArcError(Exception):
    """Base of every error that crosses a service boundary."""

    code: ErrorCode = ErrorCode.INTERNAL
    # An HTTP status finer than the code's (401 for a missing key is still `bad_request`);
    # None: the code's status from HTTP_STATUS.
    http_status: int | None = None

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.code in _RETRYABLE if retryable is None else retryable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.value!r}, message={self.message!r})"


class BadRequest(ArcError):
    code = ErrorCode.BAD_REQUEST


class TooLarge(ArcError):
    code = ErrorCode.TOO_LARGE


class Unsupported(ArcError):
    code = ErrorCode.UNSUPPORTED


class Busy(ArcError):
    code = ErrorCode.BUSY


class Timeout(ArcError):
    code = ErrorCode.TIMEOUT


class Cancelled(ArcError):
    code = ErrorCode.CANCELLED


class Internal(ArcError):
    code = ErrorCode.INTERNAL


_BY_CODE: dict[ErrorCode, type[ArcError]] = {
    cls.code: cls for cls in (BadRequest, TooLarge, Unsupported, Busy, Timeout, Cancelled, Internal)
}


def error_for(code: str, message: str) -> ArcError:
    """Rebuild the typed error a peer reported; unknown codes become `internal`."""
    try:
        return _BY_CODE[ErrorCode(code)](message)
    except ValueError:
        return Internal(f"{code}: {message}")
