"""Every HTTP API's error answer: the contract's body `{"error": {"code", "message"}}` with the
status `errors.HTTP_STATUS` gives its code, and a request FastAPI cannot validate as
`bad_request`. One table for every service, so no API answers a code with a status of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from arc_common.errors import HTTP_STATUS, ArcError, BadRequest


def contract_status(error: ArcError) -> int:
    return error.http_status or HTTP_STATUS[error.code]


def error_response(
    error: ArcError, status_of: Callable[[ArcError], int] = contract_status
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": error.code.value, "message": error.message}},
        status_code=status_of(error),
    )


def install_error_handlers(
    app: FastAPI, status_of: Callable[[ArcError], int] = contract_status
) -> None:
    """`ArcError` raised by a route, and FastAPI's own validation failures, as the contract's
    error answer. `status_of` lets a service say more than the table (the brain answers 503
    while its memory is down)."""

    @app.exception_handler(ArcError)
    async def arc_error(_request: Request, exc: ArcError) -> JSONResponse:
        return error_response(exc, status_of)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return error_response(BadRequest(f"invalid request: {problems}"), status_of)
