"""The brain's HTTP API on a real socket: JSON chat, Server-Sent Events, validation errors with
the contract's codes, transcript export, truncation of interrupted turns, health, metrics and
the OpenAPI spec."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from httpx_sse import aconnect_sse

from tests.fixtures.brain import RunningBrain
from tests.fixtures.http_auth import AUTH
from tests.integration.brain.helpers import new_id

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def http(module_brain: RunningBrain) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=module_brain.http_url, timeout=10, headers=AUTH
    ) as client:
        yield client


async def test_chat_json(http: httpx.AsyncClient) -> None:
    session, user = new_id("s"), new_id("u")
    response = await http.post(
        "/chat", json={"session_id": session, "user_id": user, "text": "  hello  "}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["session_id"] == session and body["turn_id"]
    assert body["route"] == "greeting"
    assert body["chunks"] == ["Hello!", " I'm Arc.", " How can I help you today?"]
    assert body["text"] == "Hello! I'm Arc. How can I help you today?"
    assert body["remembered"] is True


async def test_chat_stream_is_server_sent_events(http: httpx.AsyncClient) -> None:
    payload = {
        "session_id": new_id("s"),
        "user_id": new_id("u"),
        "turn_id": new_id("t"),
        "text": "repeat after me: One. Two. Three.",
    }
    events = []
    async with aconnect_sse(http, "POST", "/chat/stream", json=payload) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for event in source.aiter_sse():
            events.append((event.event, json.loads(event.data)))
    assert [kind for kind, _ in events] == ["delta", "delta", "delta", "end"]
    assert [data["seq"] for _, data in events] == [0, 1, 2, 3]
    assert [data["text"] for _, data in events[:3]] == ["One.", " Two.", " Three."]
    assert events[-1][1] == {"seq": 3, "turn_id": payload["turn_id"], "route": "repeat"}


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"session_id": "s", "user_id": "u", "text": ""}, 400, "bad_request"),
        ({"session_id": "s", "user_id": "u"}, 400, "bad_request"),
        ({"session_id": "", "user_id": "u", "text": "hi"}, 400, "bad_request"),
        ({"session_id": "s", "user_id": "u", "text": "x" * 4001}, 413, "too_large"),
    ],
)
@pytest.mark.parametrize("path", ["/chat", "/chat/stream"])
async def test_bad_input_answers_with_contract_codes(
    http: httpx.AsyncClient, path: str, payload: dict[str, str], status: int, code: str
) -> None:
    response = await http.post(path, json=payload)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert (await http.get("/healthz")).status_code == 200


async def test_undecodable_body_is_bad_request(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/chat", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


async def test_export_and_truncate(http: httpx.AsyncClient) -> None:
    session, user = new_id("s"), new_id("u")
    first = (
        await http.post("/chat", json={"session_id": session, "user_id": user, "text": "hello"})
    ).json()
    await http.post(
        "/chat",
        json={
            "session_id": session,
            "user_id": user,
            "text": "repeat after me: the quick brown fox",
        },
    )
    # The voice worker reports that only "Hello!" was heard of the first answer.
    cut = await http.post(
        f"/sessions/{session}/turns/{first['turn_id']}/truncate", json={"heard": "Hello!"}
    )
    assert cut.status_code == 200 and cut.json()["truncated"] is True
    missing = await http.post(f"/sessions/{session}/turns/nope/truncate", json={"heard": "x"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "bad_request"

    exported = (await http.get(f"/sessions/{session}/export")).json()
    assert exported["session_id"] == session
    assert [(t["role"], t["content"], t["interrupted"]) for t in exported["turns"]] == [
        ("user", "hello", False),
        ("assistant", "Hello!", True),
        ("user", "repeat after me: the quick brown fox", False),
        ("assistant", "the quick brown fox", False),
    ]
    text = await http.get(f"/sessions/{session}/export", params={"format": "text"})
    assert text.headers["content-type"].startswith("text/plain")
    lines = text.text.splitlines()
    assert len(lines) == 4
    assert lines[1].endswith("assistant: Hello! [interrupted]")
    # History now holds only what was heard: the summary is built from it.
    summary = (
        await http.post(
            "/chat", json={"session_id": session, "user_id": user, "text": "give me a recap"}
        )
    ).json()
    assert summary["route"] == "summarise"
    bad = await http.get(f"/sessions/{session}/export", params={"format": "xml"})
    assert bad.status_code == 400


async def test_health_metrics_and_openapi(http: httpx.AsyncClient) -> None:
    await http.post("/chat", json={"session_id": new_id("s"), "user_id": "u", "text": "hi"})
    health = await http.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["memory"]["available"] is True
    assert body["nats"]["connected"] is True and body["answers_with"] == "skills"
    metrics = (await http.get("/metrics")).text
    assert 'arc_brain_turns_total{outcome="ok",route="greeting"}' in metrics
    assert "arc_brain_first_delta_seconds_bucket" in metrics
    spec = (await http.get("/openapi.json")).json()
    assert {"/chat", "/chat/stream", "/sessions/{session_id}/export", "/healthz"} <= set(
        spec["paths"]
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/chat"),
        ("POST", "/chat/stream"),
        ("GET", "/sessions/s1/export"),
        ("POST", "/sessions/s1/turns/t1/truncate"),
    ],
)
async def test_private_routes_need_the_api_key(
    module_brain: RunningBrain, method: str, path: str
) -> None:
    body = {"session_id": new_id("s"), "user_id": "u", "text": "hello", "heard": "x"}
    async with httpx.AsyncClient(base_url=module_brain.http_url, timeout=10) as anonymous:
        for headers in ({}, {"authorization": "Bearer " + "x" * 43}):
            refused = await anonymous.request(method, path, json=body, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "bad_request"
        assert (await anonymous.get("/healthz")).status_code == 200
        assert (await anonymous.get("/metrics")).status_code == 200


async def test_an_oversize_chat_body_is_too_large(http: httpx.AsyncClient) -> None:
    huge = {"session_id": "s", "user_id": "u", "text": "x" * 200_000}
    answer = await http.post("/chat", json=huge)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"
    good = await http.post("/chat", json={"session_id": new_id("s"), "user_id": "u", "text": "hi"})
    assert good.status_code == 200
