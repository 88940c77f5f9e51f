"""`arc voices`: the TTS workers' voices, seen and managed from the operator's side.

Workers are found as `micro` services (`$SRV.INFO.arc-tts`, each answering with its id and
endpoints); each is then asked on its own admin subject, `tts.admin.<id>` (docs/tts.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec
from arc_common.discovery import endpoint_on, gather
from arc_common.envelope import headers_for
from arc_common.errors import BadRequest
from arc_common.subjects import TTS_REQUEST, TTS_SERVICE, prefixed, tts_admin
from arc_common.wire import ErrorBody, VoiceAdmin, VoiceAdminReply, encode
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.micro.service import ServiceVerb

Action = Literal["list", "load", "unload"]
_reply_decoder = msgspec.msgpack.Decoder(VoiceAdminReply)


async def tts_instances(nc: Client, subject_prefix: str = "", wait_s: float = 0.5) -> list[str]:
    """The ids of the TTS workers serving `tts.request` under `subject_prefix`, sorted."""
    wanted = prefixed(subject_prefix, TTS_REQUEST)
    infos = await gather(nc, ServiceVerb.INFO, TTS_SERVICE, wait_s)
    return sorted({str(info.get("id")) for info in infos if endpoint_on(info, wanted) is not None})


async def ask(
    nc: Client,
    instance: str,
    action: Action,
    voice: str | None = None,
    *,
    subject_prefix: str = "",
    timeout_s: float = 30.0,
) -> VoiceAdminReply:
    """One admin request to one worker (loading a voice takes a second or two)."""
    request = VoiceAdmin(action=action, voice=voice)
    msg = await nc.request(
        tts_admin(subject_prefix, instance),
        encode(request),
        timeout=timeout_s,
        headers=headers_for(VoiceAdmin.schema),
    )
    return _reply_decoder.decode(msg.data)


async def ask_all(
    nc: Client,
    action: Action,
    voice: str | None = None,
    *,
    instances: Sequence[str] | None = None,
    subject_prefix: str = "",
) -> list[VoiceAdminReply]:
    """The same request to every worker found (or to `instances`), one after another: a
    voice loads on each worker's own CPU, and the replies come back in instance order."""
    if action != "list" and not voice:
        raise BadRequest(f"{action} needs a voice")
    targets = instances or await tts_instances(nc, subject_prefix)
    replies = []
    for instance in targets:
        try:
            replies.append(await ask(nc, instance, action, voice, subject_prefix=subject_prefix))
        except NoRespondersError:
            # As the contract answers a request nobody serves: `busy` (no worker has this id).
            replies.append(_unanswered(instance, "busy", "no TTS worker answers to this id"))
        except TimeoutError:
            replies.append(_unanswered(instance, "timeout", "the worker did not answer in time"))
    return replies


def _unanswered(instance: str, code: str, message: str) -> VoiceAdminReply:
    return VoiceAdminReply(v=1, instance=instance, error=ErrorBody(code=code, message=message))


def describe(reply: VoiceAdminReply) -> str:
    """One line per worker, as `arc voices` prints it."""
    if reply.error is not None:
        return f"{reply.instance}: refused ({reply.error.code}): {reply.error.message}"
    pinned = set(reply.voices_pinned or ())
    resident = [f"{v}{' (pinned)' if v in pinned else ''}" for v in reply.voices_resident or ()]
    others = [v for v in reply.voices_installed or () if v not in set(reply.voices_resident or ())]
    return (
        f"{reply.instance}: loaded {', '.join(resident) or 'none'}; "
        f"installed, not loaded: {', '.join(others) or 'none'}"
    )
