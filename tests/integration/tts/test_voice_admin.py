"""`tts.admin.<instance>` on a real NATS server with real TTS workers (Piper loading real
voices), asked the way `arc voices` asks: workers found by `$SRV.INFO`, each asked on its
own subject; bad requests answered with the contract's error codes."""

from __future__ import annotations

from typing import cast

import msgspec
import pytest
from arc_common.envelope import headers_for
from arc_common.subjects import tts_admin
from arc_common.wire import VoiceAdmin, VoiceAdminReply
from arc_stack.voices import Action, ask, ask_all, describe, tts_instances
from nats.aio.client import Client

from tests.fixtures.tts import EXTRA_VOICE, TtsWorker

pytestmark = pytest.mark.integration


async def test_an_operator_lists_loads_and_unloads_a_workers_voices(
    nc: Client, tts_worker: TtsWorker
) -> None:
    prefix = tts_worker.subject_prefix
    instance = tts_worker.service.instance_id
    registry = tts_worker.synthesizer.registry
    # Found as the only worker under this prefix (the session's other workers serve others).
    assert await tts_instances(nc, prefix) == [instance]

    # The session's synthesizer is shared: an earlier test may have left the extra voice
    # loaded (tests/integration/tts/test_tts_nats.py loads it on demand). Unloading a voice
    # that is not resident is a no-op, so this starts from a known state either way.
    assert (await ask(nc, instance, "unload", EXTRA_VOICE, subject_prefix=prefix)).error is None
    listed = await ask(nc, instance, "list", subject_prefix=prefix)
    assert listed.error is None and listed.instance == instance
    assert listed.voices_pinned == [registry.default_voice]
    assert EXTRA_VOICE in (listed.voices_installed or [])
    assert EXTRA_VOICE not in (listed.voices_resident or []), listed

    [loaded] = await ask_all(nc, "load", EXTRA_VOICE, subject_prefix=prefix)
    assert loaded.error is None and EXTRA_VOICE in (loaded.voices_resident or []), loaded
    assert EXTRA_VOICE in registry.resident  # the worker itself holds it now
    assert f"{EXTRA_VOICE}" in describe(loaded) and "(pinned)" in describe(loaded)

    unloaded = await ask(nc, instance, "unload", EXTRA_VOICE, subject_prefix=prefix)
    assert unloaded.error is None and EXTRA_VOICE not in (unloaded.voices_resident or [])
    assert EXTRA_VOICE not in registry.resident


@pytest.mark.parametrize(
    ("action", "voice", "code", "words"),
    [
        ("unload", None, "bad_request", "needs a voice"),
        ("load", "nobody-medium", "unsupported", "not installed"),
        ("unload", "en_US-joe-medium", "bad_request", "pinned"),
    ],
)
async def test_a_request_that_cannot_be_served_is_refused_with_its_code(
    nc: Client, tts_worker: TtsWorker, action: str, voice: str | None, code: str, words: str
) -> None:
    instance = tts_worker.service.instance_id
    reply = await ask(
        nc, instance, cast(Action, action), voice, subject_prefix=tts_worker.subject_prefix
    )
    assert reply.error is not None and reply.error.code == code, reply
    assert words in reply.error.message
    assert describe(reply).startswith(f"{instance}: refused ({code})")


@pytest.mark.parametrize(
    "body",
    [b"not msgpack \xff", msgspec.msgpack.encode({"v": 1, "action": "format-disk"})],
)
async def test_garbage_is_answered_bad_request_and_the_worker_keeps_serving(
    nc: Client, tts_worker: TtsWorker, body: bytes
) -> None:
    instance = tts_worker.service.instance_id
    subject = tts_admin(tts_worker.subject_prefix, instance)
    msg = await nc.request(subject, body, timeout=10, headers=headers_for(VoiceAdmin.schema))
    reply = msgspec.msgpack.decode(msg.data, type=VoiceAdminReply)
    assert reply.error is not None and reply.error.code == "bad_request", reply
    after = await ask(nc, instance, "list", subject_prefix=tts_worker.subject_prefix)
    assert after.error is None and after.voices_resident


async def test_an_instance_no_worker_answers_to_is_reported_not_raised(
    nc: Client, tts_worker: TtsWorker
) -> None:
    prefix = tts_worker.subject_prefix
    ours = tts_worker.service.instance_id
    gone, mine = await ask_all(nc, "list", instances=["NOSUCHWORKER", ours], subject_prefix=prefix)
    assert gone.error is not None and gone.error.code == "busy", gone
    assert mine.error is None and mine.instance == ours
