"""`tts.admin.<instance>`: an operator lists one TTS worker's voices, or has it load or
unload one (request/reply; the instance is the worker's `$SRV.INFO` id, so the request
reaches that worker and no other). `arc voices` is the command line over it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from arc_common.errors import BadRequest
from arc_common.request_reply import answer
from arc_common.subjects import tts_admin
from arc_common.wire import VoiceAdmin, VoiceAdminReply
from nats.aio.client import Client
from nats.aio.msg import Msg

from arc_tts.voices import VoiceRegistry

log = logging.getLogger(__name__)


async def act(registry: VoiceRegistry, instance: str, request: VoiceAdmin) -> VoiceAdminReply:
    """Carry out one admin request; the reply holds the voices as they are afterwards."""
    if request.action != "list":
        if request.voice is None:
            raise BadRequest(f"{request.action} needs a voice")
        if request.action == "load":
            await registry.load(request.voice)
        else:
            await registry.unload(request.voice)
        log.info("voice %s: %s, asked by an operator", request.voice, request.action)
    return VoiceAdminReply(
        v=1,
        instance=instance,
        voices_resident=registry.resident,
        voices_installed=registry.installed(),
        voices_pinned=list(registry.pinned),
    )


@contextlib.asynccontextmanager
async def voice_admin(
    nc: Client, registry: VoiceRegistry, instance: str, subject_prefix: str
) -> AsyncIterator[str]:
    """Answer this worker's admin subject for the life of the block; yields the subject."""

    async def on_request(msg: Msg) -> None:
        await answer(
            nc,
            msg,
            VoiceAdmin,
            lambda request: act(registry, instance, request),
            lambda error: VoiceAdminReply(v=1, instance=instance, error=error),
        )

    subject = tts_admin(subject_prefix, instance)
    subscription = await nc.subscribe(subject, cb=on_request)
    try:
        yield subject
    finally:
        with contextlib.suppress(Exception):  # the connection may already be closed
            await subscription.unsubscribe()
