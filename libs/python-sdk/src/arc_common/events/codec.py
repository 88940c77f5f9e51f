"""Validating events and turning them into (and back from) their JSON wire form.

On the wire an event is one JSON object: its fields plus `type` and `v` (the schema
version), so a reader picks the schema before it decodes the rest.
"""

from __future__ import annotations

from typing import Any

import msgspec

from arc_common.errors import BadRequest
from arc_common.events.schemas import SCHEMAS, Event


class _Header(msgspec.Struct):
    type: str
    v: int


_header_decoder = msgspec.json.Decoder(_Header)
_encoder = msgspec.json.Encoder()
_decoders: dict[type[Event], msgspec.json.Decoder[Any]] = {
    cls: msgspec.json.Decoder(cls) for cls in SCHEMAS.values()
}


def _describe(error: Exception) -> str:
    return str(error).replace("`$.", "`")


def validate(event: Event) -> Event:
    """The event re-checked against its schema; raises `BadRequest` saying what is wrong.

    A struct's constructor does not check types or constraints, so the event is converted
    through its builtin form, which applies every annotation."""
    cls = type(event)
    if (getattr(cls, "TYPE", None), getattr(cls, "VERSION", None)) not in SCHEMAS:
        raise BadRequest(f"{cls.__name__} is not a registered event schema")
    try:
        checked = msgspec.convert(msgspec.to_builtins(event), cls)
        checked.check()
    except (msgspec.ValidationError, ValueError, TypeError) as error:
        raise BadRequest(f"invalid {cls.TYPE}/v{cls.VERSION} event: {_describe(error)}") from error
    return checked


def to_builtins(event: Event) -> dict[str, Any]:
    """The wire form as a dict (for a jsonb column)."""
    body: dict[str, Any] = msgspec.to_builtins(event)
    body["type"] = type(event).TYPE
    body["v"] = type(event).VERSION
    return body


def encode(event: Event) -> bytes:
    """The wire form as JSON bytes; the event is validated first."""
    return _encoder.encode(to_builtins(validate(event)))


def decode(data: bytes | str) -> Event:
    """Decodes and validates one event; raises `BadRequest` for bytes that are not JSON,
    name an unknown type or version, or break the schema."""
    try:
        header = _header_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise BadRequest(f"not an event: {_describe(error)}") from error
    cls = SCHEMAS.get((header.type, header.v))
    if cls is None:
        raise BadRequest(f"unknown event schema {header.type}/v{header.v}")
    try:
        event: Event = _decoders[cls].decode(data)
        event.check()
    except (msgspec.DecodeError, ValueError) as error:
        raise BadRequest(f"invalid {cls.TYPE}/v{cls.VERSION} event: {_describe(error)}") from error
    return event
