"""API keys, the per-client rate limit and the body limit every service's HTTP API shares
(`arc_common.http_security`), on a small app served in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from arc_common.http_errors import install_error_handlers
from arc_common.http_security import HttpGuard
from arc_common.settings import HttpSettings, ServiceSettings
from fastapi import Depends, FastAPI, Request
from pydantic import SecretStr, ValidationError

pytestmark = pytest.mark.unit

KEY = "k" * 20 + "-first"
OTHER = "o" * 20 + "-second"


def _app(settings: HttpSettings) -> FastAPI:
    guard = HttpGuard(settings)
    app = FastAPI()
    install_error_handlers(app)
    guard.install(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/private", dependencies=[Depends(guard.require_key)])
    async def private(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/costly", dependencies=[Depends(guard.rate_limit), Depends(guard.require_key)])
    async def costly() -> dict[str, bool]:
        return {"ok": True}

    return app


def _client(settings: HttpSettings) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://arc.test")


def _keys(*keys: str, **rest: int) -> HttpSettings:
    return HttpSettings(api_keys=[SecretStr(k) for k in keys], **rest)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer " + "k" * 26},
        {"authorization": f"Basic {KEY}"},
        {"authorization": f"Bearer {KEY}x"},
        {"x-api-key": KEY[:-1]},
        {"x-api-key": ""},
    ],
)
async def test_a_missing_or_wrong_key_is_refused(headers: dict[str, str]) -> None:
    async with _client(_keys(KEY, OTHER)) as client:
        refused = await client.post("/private", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "bad_request"
        assert refused.json()["error"]["message"]
        # Public routes stay open, and the service keeps serving good requests.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.post("/private", headers={"x-api-key": KEY})).status_code == 200


async def test_every_configured_key_opens_the_routes_so_keys_can_be_rotated() -> None:
    async with _client(_keys(KEY, OTHER)) as client:
        for headers in ({"authorization": f"Bearer {KEY}"}, {"x-api-key": OTHER}):
            assert (await client.post("/private", headers=headers)).status_code == 200


async def test_no_configured_key_closes_the_routes_rather_than_opening_them() -> None:
    async with _client(HttpSettings()) as client:
        refused = await client.post("/private", headers={"x-api-key": KEY})
        assert refused.status_code == 401
        assert "has none set" in refused.json()["error"]["message"]
        assert (await client.get("/healthz")).status_code == 200


async def test_the_rate_limit_answers_busy_429_per_client() -> None:
    async with _client(_keys(KEY, rate_limit_per_minute=3)) as client:
        statuses = [
            (await client.post("/costly", headers={"x-api-key": KEY})).status_code for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        limited = await client.post("/costly", headers={"x-api-key": KEY})
        assert limited.json()["error"]["code"] == "busy"
        # Another route is not counted against it.
        assert (await client.post("/private", headers={"x-api-key": KEY})).status_code == 200


async def test_an_oversize_body_is_too_large_with_or_without_a_length() -> None:
    async with _client(_keys(KEY, max_body_bytes=2048)) as client:
        auth = {"x-api-key": KEY}
        fits = await client.post("/private", content=b"x" * 2048, headers=auth)
        assert fits.status_code == 200 and fits.json() == {"bytes": 2048}
        declared = await client.post("/private", content=b"x" * 4096, headers=auth)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "too_large"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield b"x" * 1024

        streamed = await client.post("/private", content=chunks(), headers=auth)
        assert streamed.status_code == 413, streamed.text
        assert streamed.json()["error"]["code"] == "too_large"
        assert (await client.post("/private", content=b"ok", headers=auth)).status_code == 200


def test_keys_come_comma_separated_or_as_json_and_must_be_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARC_HTTP__API_KEYS", f"{KEY}, {OTHER}")
    keys = ServiceSettings().http.api_keys
    assert [k.get_secret_value() for k in keys] == [KEY, OTHER]
    monkeypatch.setenv("ARC_HTTP__API_KEYS", f'["{OTHER}"]')
    assert [k.get_secret_value() for k in ServiceSettings().http.api_keys] == [OTHER]
    monkeypatch.setenv("ARC_HTTP__API_KEYS", "short")
    with pytest.raises(ValidationError, match="at least 16 characters"):
        ServiceSettings()
    # The key never shows in the settings' text (logs print settings objects).
    monkeypatch.setenv("ARC_HTTP__API_KEYS", KEY)
    assert KEY not in repr(ServiceSettings())
