"""Structured JSON logs that carry the session and turn being served."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from arc_common.settings import LogSettings

session_id_var: ContextVar[str | None] = ContextVar("arc_session_id", default=None)
# Set once at start-up from `ARC_LOG__USER_TEXT`; a process that never configures logging (a
# test, a library user) redacts.
_log_user_text = False


def said(text: str) -> str:
    """What a person said (or was answered) as a log line may show it: redacted unless
    `ARC_LOG__USER_TEXT=true`, since logs travel further than the conversation's store."""
    return text if _log_user_text else f"<{len(text)} characters, ARC_LOG__USER_TEXT=false>"


turn_id_var: ContextVar[str | None] = ContextVar("arc_turn_id", default=None)


class _TurnFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            record.session_id = session_id_var.get()
        if not hasattr(record, "turn_id"):
            record.turn_id = turn_id_var.get()
        if not hasattr(record, "trace_id"):
            # The span current where the line was logged links the line to its trace (Jaeger
            # finds it by trace id); null outside a recorded span, as when tracing is off.
            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                record.trace_id = format(span_context.trace_id, "032x")
                record.span_id = format(span_context.span_id, "016x")
            else:
                record.trace_id = record.span_id = None
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
    global _log_user_text
    _log_user_text = settings.user_text
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TurnFilter())
    if settings.json_format:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(session_id)s %(turn_id)s "
                "%(trace_id)s %(span_id)s",
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
