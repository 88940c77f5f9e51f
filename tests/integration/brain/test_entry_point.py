"""`python -m arc_brain` as `make run` starts it: settings from the environment, NATS and
HTTP up, and on SIGTERM or SIGINT a drain (the turn in flight ends with `end`/`cancelled`,
NATS drained, HTTP stopped) and exit status 0."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from arc_common.streaming import StreamingClient
from arc_common.subjects import BRAIN_CANCEL, BRAIN_REQUEST, prefixed
from arc_stack.postgres import PostgresServer

from tests.fixtures.nats import SessionNats
from tests.integration.brain.helpers import new_id, request, spawn_brain
from tests.integration.brain.openai_double import OpenAiDouble

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_python_m_arc_brain_serves_and_drains_on_a_stop_signal(
    nats_server: SessionNats,
    postgres_server: PostgresServer,
    openai_double: OpenAiDouble,
    client: StreamingClient,
    subject_prefix: str,
    tmp_path: Path,
    stop_signal: signal.Signals,
) -> None:
    log_path = tmp_path / "brain.log"
    # The model streams a piece every 20 ms for ~15 s: a turn still in flight at the signal.
    proc = await spawn_brain(
        nats=nats_server.settings("brain", subject_prefix=subject_prefix),
        dsn=postgres_server.dsn(),
        llm_url=openai_double.base_url,
        model="slow",
        log_path=log_path,
    )
    try:
        stream = client.stream(
            prefixed(subject_prefix, BRAIN_REQUEST),
            request(
                "Tell me a long story about the sea.",
                session_id=new_id("s"),
                user_id=new_id("u"),
            ),
            cancel_subject=prefixed(subject_prefix, BRAIN_CANCEL),
            first_chunk_timeout=30.0,
            idle_timeout=10.0,
        )
        deltas = 0
        async with stream:
            async for chunk in stream:
                assert chunk.kind == "delta"
                if deltas == 0:
                    proc.send_signal(stop_signal)
                deltas += 1
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log_text = log_path.read_text()
    # The brain ended the turn itself (not the client's idle timeout), well before the model's
    # ~15 s answer was over, then stopped in order.
    assert stream.end is not None and stream.end.kind == "end", log_text
    assert stream.end.reason == "cancelled", log_text
    assert code == 0, log_text
    assert f"stopping on {stop_signal.name}" in log_text
    assert "brain stopped" in log_text
    assert "Traceback" not in log_text
