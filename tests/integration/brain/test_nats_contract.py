"""`brain.request` / `brain.cancel` exactly per the contract, against the real brain on a real
NATS server and Postgres: seq numbers, one terminal, the headers, and every error code the
skills path can produce. (LLM-path codes and cancellation: test_llm.py.)"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from arc_common.errors import BadRequest, Timeout, TooLarge
from arc_common.streaming import StreamingClient
from arc_common.subjects import BRAIN_REQUEST, prefixed
from nats.aio.client import Client

from tests.fixtures.brain import BrainFactory, RunningBrain
from tests.integration.brain.helpers import ask, new_id, request

pytestmark = pytest.mark.integration


async def raw_exchange(
    nc: Client, subject: str, payload: bytes
) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Publish bytes, read the reply stream off the wire up to its terminal message, and make
    sure nothing follows it."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, payload, reply=inbox, headers={"arc-schema": "brain.request/1"})
    messages: list[tuple[dict[str, Any], dict[str, str]]] = []
    while True:
        msg = await sub.next_msg(timeout=5)
        body = msgspec.msgpack.decode(msg.data)
        messages.append((body, dict(msg.headers or {})))
        if body["kind"] in ("end", "error"):
            break
    with pytest.raises(TimeoutError):
        await sub.next_msg(timeout=0.2)
    await sub.unsubscribe()
    return messages


async def test_reply_is_ordered_speakable_deltas_and_one_end(
    brain_factory: BrainFactory, nc: Client, subject_prefix: str
) -> None:
    await brain_factory(subject_prefix=subject_prefix)
    req = request(
        "repeat after me: Dr. Smith paid $3.50. Then he left. See you!",
        session_id=new_id("s"),
        user_id=new_id("u"),
    )
    messages = await raw_exchange(
        nc, prefixed(subject_prefix, BRAIN_REQUEST), msgspec.msgpack.encode(req)
    )
    bodies = [body for body, _ in messages]
    assert [b["seq"] for b in bodies] == list(range(len(bodies)))
    assert [b["kind"] for b in bodies] == ["delta", "delta", "delta", "end"]
    assert [b["text"] for b in bodies[:-1]] == [
        "Dr. Smith paid $3.50.",
        " Then he left.",
        " See you!",
    ]
    assert all(b["v"] == 1 and b["turn_id"] == req.turn_id for b in bodies)
    assert all(headers.get("arc-schema") == "brain.reply/1" for _, headers in messages)


async def test_skills_answer_over_nats(module_brain: RunningBrain, client: StreamingClient) -> None:
    subject_prefix = module_brain.subject_prefix
    ids = {"session_id": new_id("s"), "user_id": new_id("u")}
    greeting = await ask(client, subject_prefix, request("hello there", **ids))
    assert "".join(c.text or "" for c in greeting).startswith("Hello!")
    help_chunks = await ask(client, subject_prefix, request("what can you do?", **ids))
    assert "remember facts" in "".join(c.text or "" for c in help_chunks)


@pytest.mark.parametrize(
    ("payload", "message_part"),
    [
        (b"\xc1\xff not msgpack", "MessagePack"),
        (msgspec.msgpack.encode([1, 2, 3]), "invalid"),
        (msgspec.msgpack.encode({"v": 1, "turn_id": "t-x", "session_id": "s"}), "user_id"),
        (
            msgspec.msgpack.encode(
                {"v": 2, "turn_id": "t", "session_id": "s", "user_id": "u", "text": "hi"}
            ),
            "v",
        ),
        (
            msgspec.msgpack.encode(
                {"v": 1, "turn_id": "t", "session_id": "s", "user_id": "u", "text": "   "}
            ),
            "empty",
        ),
    ],
)
async def test_bad_input_gets_bad_request_and_service_keeps_serving(
    module_brain: RunningBrain,
    nc: Client,
    client: StreamingClient,
    payload: bytes,
    message_part: str,
) -> None:
    subject_prefix = module_brain.subject_prefix
    messages = await raw_exchange(nc, prefixed(subject_prefix, BRAIN_REQUEST), payload)
    assert len(messages) == 1
    body = messages[0][0]
    assert body["kind"] == "error" and body["seq"] == 0
    assert body["error"]["code"] == "bad_request"
    assert message_part in body["error"]["message"]
    # The brain is still there.
    chunks = await ask(client, subject_prefix, request("hi", session_id="s", user_id="u"))
    assert chunks


async def test_error_codes_as_typed_errors(
    module_brain: RunningBrain, client: StreamingClient
) -> None:
    subject_prefix = module_brain.subject_prefix
    ids = {"session_id": new_id("s"), "user_id": new_id("u")}
    with pytest.raises(TooLarge, match="limit is 4000"):
        await ask(client, subject_prefix, request("x" * 4001, **ids))
    with pytest.raises(BadRequest, match="empty"):
        await ask(client, subject_prefix, request(" \n ", **ids))
    # A deadline the turn cannot meet ends it with `timeout`.
    with pytest.raises(Timeout, match="deadline"):
        await ask(client, subject_prefix, request("what time is it?", deadline_ms=1, **ids))
    # Too large for the endpoint's payload limit altogether.
    with pytest.raises(TooLarge):
        await ask(client, subject_prefix, request("y" * 70_000, **ids))


async def test_unprefixed_brain_service_answers_the_contract_subject(
    brain_service: object, client: StreamingClient
) -> None:
    chunks = await ask(
        client, "", request("what's the date today?", session_id=new_id("s"), user_id="u")
    )
    assert "".join(c.text or "" for c in chunks).startswith("Today is ")
