"""Answering the contract's request/reply subjects (`brain.session.delete`, `brain.truncate`,
`tts.admin.<instance>`): decode and validate the request, act on it in the caller's trace,
and always reply, with the contract's error codes when the request could not be served.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from arc_common.envelope import headers_for, schema_of, trace_context_from
from arc_common.errors import ArcError, BadRequest, ErrorCode
from arc_common.tracing import attached
from arc_common.wire import REPLY_SCHEMAS, ErrorBody, decode_or_reject, encode

log = logging.getLogger(__name__)


Request = TypeVar("Request", bound=msgspec.Struct)


def schema_name(kind: type[msgspec.Struct]) -> str:
    """The `arc-schema` a request type declares (its `schema` class variable)."""
    name = getattr(kind, "schema", None)
    if not isinstance(name, str):
        raise TypeError(f"{kind.__name__} declares no schema")
    return name


def decode_request(headers: Mapping[str, str] | None, data: bytes, kind: type[Request]) -> Request:
    """A request/reply message of the contract, or `BadRequest` saying what is wrong with it."""
    wanted = schema_name(kind)
    schema = schema_of(headers)
    if schema is not None and schema != wanted:
        raise BadRequest(f"arc-schema {schema!r} is not {wanted!r}")
    return decode_or_reject(
        lambda raw: msgspec.msgpack.decode(raw, type=kind),
        data,
        invalid=f"invalid {wanted}",
        malformed=f"{wanted} is not a MessagePack map",
    )


async def answer(
    nc: Client,
    msg: Msg,
    kind: type[Request],
    act: Callable[[Request], Awaitable[msgspec.Struct]],
    failed: Callable[[ErrorBody], msgspec.Struct],
    *,
    codes: Mapping[type[ArcError], ErrorCode] | None = None,
) -> None:
    """Decode, act in the request's trace, reply. An `ArcError` is answered with its code (or
    the one `codes` gives its type: the brain answers a memory outage `busy`, since the same
    request succeeds once Postgres is back); anything else is answered `internal`, so no
    caller waits for its timeout."""
    what = schema_name(kind)
    reply: msgspec.Struct
    try:
        request = decode_request(msg.headers, msg.data, kind)
        with attached(trace_context_from(msg.headers)):
            reply = await act(request)
    except ArcError as exc:
        code = next((c for t, c in (codes or {}).items() if isinstance(exc, t)), exc.code)
        log.warning("%s refused: %s", what, exc.message)
        reply = failed(ErrorBody(code=code.value, message=exc.message))
    except Exception as exc:
        log.exception("%s failed", what)
        reply = failed(ErrorBody(code="internal", message=f"{type(exc).__name__} in {what}"))
    if msg.reply:
        await nc.publish(msg.reply, encode(reply), headers=headers_for(REPLY_SCHEMAS[what]))
