"""The brain with its default offline model: the real `llama-server` running the SmolLM2 GGUF
from its wheel, real NATS and Postgres. What the graph must get exactly right (memory stated
in plain speech, arithmetic, live-data honesty) and how the model is driven (streaming,
cancel, a bounded queue, a clear start-up error for a bad model file)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from arc_common.errors import Busy
from arc_common.streaming import StreamingClient
from arc_stack.llm import LlamaServer
from arc_stack.server import ServerStartError, free_port
from nats.aio.client import Client

from tests.integration.brain.helpers import Say, StartBrain, answer_text, ask, new_id, request
from tests.integration.brain.test_llm import cancel_mid_answer

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_a_general_question_is_answered_by_the_model_in_spoken_text(
    local_brain: StartBrain, client: StreamingClient, subject_prefix: str
) -> None:
    await local_brain()
    req = request("Tell me something about the sea.", session_id=new_id("s"), user_id="u")
    chunks = await ask(client, subject_prefix, req)
    text = "".join(c.text or "" for c in chunks)
    assert len(text.split()) >= 3, text
    assert not any(mark in text for mark in ("*", "#", "`", "\n")), text


async def test_facts_said_in_passing_are_kept_updated_forgotten_and_private(
    local_brain: StartBrain, client: StreamingClient, subject_prefix: str
) -> None:
    await local_brain()
    dana, other = new_id("dana"), new_id("other")

    async def say(text: str, user: str, session: str) -> str:
        return await answer_text(client, subject_prefix, text, session_id=session, user_id=user)

    first = new_id("s")
    said = await say("My name is Dana and I love sailing.", dana, first)
    assert "Dana" in said and "sailing" in said, said
    await say("My sister lives in Lyon.", dana, first)

    # A later session of the same user: recalled by meaning.
    later = new_id("s")
    assert "Dana" in await say("What's my name?", dana, later)
    assert "Lyon" in await say("Where does my sister live?", dana, later)
    # Never for another user.
    stranger = await say("What's my name?", other, new_id("s"))
    assert "Dana" not in stranger, stranger
    assert "Lyon" not in await say("Where does my sister live?", other, new_id("s"))

    # Contradicted: the newer fact wins.
    await say("Actually my name is Dani.", dana, later)
    renamed = await say("What is my name?", dana, new_id("s"))
    assert "Dani" in renamed and "Dana" not in renamed, renamed

    # Forgotten.
    assert "forgotten" in await say("Forget my sister.", dana, later)
    gone = await say("Where does my sister live?", dana, new_id("s"))
    assert "Lyon" not in gone, gone


async def test_arithmetic_and_live_data_are_never_left_to_the_model(
    local_brain: StartBrain, say: Say
) -> None:
    await local_brain()
    session = new_id("s")
    minutes = await say("How many minutes are in three hours?", session_id=session, user_id="u")
    assert "180" in minutes, minutes
    weather = await say("What's the weather like tomorrow?", session_id=session, user_id="u")
    assert "can't" in weather.lower() or "cannot" in weather.lower(), weather


async def test_cancel_stops_the_answer_within_50ms_and_frees_the_model(
    local_brain: StartBrain,
    nc: Client,
    client: StreamingClient,
    subject_prefix: str,
    llm_server: LlamaServer,
) -> None:
    await local_brain(max_tokens=400)
    req = request(
        "Tell me a long story about a dragon who learns to sail.", session_id=new_id("s"),
        user_id="u",
    )  # fmt: skip
    await cancel_mid_answer(nc, client, subject_prefix, req, after=1)
    # The server stops generating for nobody: its slots go idle.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{llm_server.port}") as http:
        deadline = time.monotonic() + 2.0
        while True:
            slots = (await http.get("/slots")).json()
            if not any(slot.get("is_processing") for slot in slots):
                break
            assert time.monotonic() < deadline, slots
            await asyncio.sleep(0.05)


async def test_eight_concurrent_answers_queue_or_get_busy_and_none_hangs(
    local_brain: StartBrain, client: StreamingClient, subject_prefix: str
) -> None:
    await local_brain(max_in_flight=4, max_tokens=40)

    async def one(i: int) -> str:
        req = request(f"Say something nice about the number {i}.", session_id=new_id("s"),
                      user_id="u")  # fmt: skip
        try:
            chunks = await ask(client, subject_prefix, req)
        except Busy:
            return "busy"
        return "answered" if "".join(c.text or "" for c in chunks).strip() else "empty"

    outcomes = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(8))), timeout=60)
    assert outcomes.count("answered") >= 4, outcomes
    assert set(outcomes) <= {"answered", "busy"}, outcomes
    assert outcomes.count("busy") == 8 - outcomes.count("answered")


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), (b"not a model at all" * 100, "is not a GGUF model file")],
)
async def test_a_missing_or_corrupt_model_is_one_clear_start_up_error(
    tmp_path: Path, llm_server: LlamaServer, content: bytes | None, message: str
) -> None:
    model = tmp_path / "model.gguf"
    if content is not None:
        model.write_bytes(content)
    server = LlamaServer(tmp_path / "data", tmp_path / "logs", port=free_port(), model_path=model)
    with pytest.raises(ServerStartError, match=message):
        await server.start()
    assert not server.running


@pytest.mark.parametrize(
    ("requantize", "message"),
    [(False, "llm exited with code"), (True, "could not be read")],
)
async def test_a_truncated_gguf_fails_the_start_with_the_reason(
    tmp_path: Path, llm_server: LlamaServer, requantize: bool, message: str
) -> None:
    model = tmp_path / "truncated.gguf"
    with llm_server.model().open("rb") as f:
        model.write_bytes(f.read(1_000_000))
    server = LlamaServer(
        tmp_path / "data", tmp_path / "logs", port=free_port(), model_path=model,
        requantize=requantize,
    )  # fmt: skip
    with pytest.raises(ServerStartError, match=message):
        await server.start()
    assert not server.running
