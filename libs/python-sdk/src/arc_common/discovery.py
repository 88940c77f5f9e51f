"""Asking every instance of a `micro` service at once (`$SRV.INFO.<name>`,
`$SRV.STATS.<name>`): each answers on the asker's inbox, and those that answer within a short
wait are the ones found."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.micro.service import ServiceVerb, control_subject

# Every instance answers at once; one later than this is left for the next ask.
GATHER_S = 0.25


async def gather(
    nc: Client, verb: ServiceVerb, name: str, wait_s: float = GATHER_S
) -> list[dict[str, Any]]:
    """The JSON answers of every instance of service `name` to `verb`, as they came."""
    answers: list[dict[str, Any]] = []

    async def collect(msg: Msg) -> None:
        with contextlib.suppress(ValueError):
            answer = json.loads(msg.data)
            if isinstance(answer, dict):
                answers.append(answer)

    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox, cb=collect)
    try:
        await nc.publish(control_subject(verb, name=name), b"", reply=inbox)
        await nc.flush()
        await asyncio.sleep(wait_s)
    finally:
        await subscription.unsubscribe()
    return answers


def endpoint_on(answer: Mapping[str, Any], subject: str) -> dict[str, Any] | None:
    """The endpoint of one instance's answer that serves `subject` (instances of the same
    service under another subject prefix serve others), or None."""
    endpoints = answer.get("endpoints")
    if not isinstance(endpoints, list):
        return None
    for endpoint in endpoints:
        if isinstance(endpoint, dict) and endpoint.get("subject") == subject:
            return endpoint
    return None
