"""Every service's HTTP errors come from one table: the contract's body and status per code."""

from __future__ import annotations

import httpx
import pytest
from arc_common.errors import (
    ArcError,
    BadRequest,
    Busy,
    Cancelled,
    Internal,
    Timeout,
    TooLarge,
    Unsupported,
)
from arc_common.http_errors import install_error_handlers
from fastapi import FastAPI
from pydantic import BaseModel

pytestmark = pytest.mark.unit

# The contract's statuses (docs/brain.md, docs/tts.md), written out, not read from the code.
EXPECTED = [
    (BadRequest, "bad_request", 400),
    (TooLarge, "too_large", 413),
    (Unsupported, "unsupported", 422),
    (Busy, "busy", 503),
    (Timeout, "timeout", 504),
    (Cancelled, "cancelled", 499),
    (Internal, "internal", 500),
]


class Body(BaseModel):
    count: int


def _app(error: ArcError | None = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/thing")
    async def thing(body: Body) -> dict[str, int]:
        if error is not None:
            raise error
        return {"count": body.count}

    return app


async def _post(app: FastAPI, json: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/thing", json=json)


@pytest.mark.parametrize(("error_type", "code", "status"), EXPECTED)
async def test_an_arc_error_is_the_contracts_answer(
    error_type: type[ArcError], code: str, status: int
) -> None:
    answer = await _post(_app(error_type("it went wrong")), {"count": 1})
    assert answer.status_code == status
    assert answer.json() == {"error": {"code": code, "message": "it went wrong"}}


async def test_a_body_fastapi_cannot_validate_is_bad_request() -> None:
    answer = await _post(_app(), {"count": "many"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "bad_request" and "count" in error["message"]
    assert (await _post(_app(), {"count": 3})).json() == {"count": 3}
