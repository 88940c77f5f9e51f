"""Structured JSON logs that carry the session and turn being served."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from arc_common.settings import LogSettings

session_id_var: ContextVar[str | None] = ContextVar("arc_session_id", default=None)
turn_id_var: ContextVar[str | None] = ContextVar("arc_turn_id", default=None)


class _TurnFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            record.session_id = session_id_var.get()
        if not hasattr(record, "turn_id"):
            record.turn_id = turn_id_var.get()
        return True


@contextmanager
def bound_turn(session_id: str | None, turn_id: str | None) -> Iterator[None]:
    """Every log line inside names this session and turn."""
    s_token = session_id_var.set(session_id)
    t_token = turn_id_var.set(turn_id)
    try:
        yield
    finally:
        session_id_var.reset(s_token)
        turn_id_var.reset(t_token)


def configure_logging(settings: LogSettings, *, service: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TurnFilter())
    if settings.json_format:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(session_id)s %(turn_id)s",
                rename_fields={"levelname": "level", "asctime": "ts", "name": "logger"},
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(turn_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
