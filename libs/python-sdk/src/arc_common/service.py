"""How every Arc service process starts and stops: `python -m arc_brain`, `arc_tts`,
`arc_events` and `arc_voice` are each `load_settings` + `run_service`.

- `load_settings(BrainSettings)` builds the settings from `ARC_*` variables. A bad value
  prints one line to stderr, naming the variable and the problem, and exits with status 2.
- `run_service(settings, open_resources, build_app, host=..., port=...)` configures logging
  and telemetry, opens the service's resources in one `async with` (its lifespan: NATS,
  Postgres, models, ...), serves HTTP over them with uvicorn, and on SIGTERM or SIGINT
  drains: HTTP stops accepting and gives open requests `graceful_s` to finish, then the
  resources close in reverse order (NATS turns in flight end with `end`/`cancelled`, NATS
  connections drain), and the process exits with status 0.

A stop signal during start-up cancels it (whatever was opened closes) and also exits 0; a
start-up that fails is logged and exits 1. While uvicorn serves, its own handler takes the
signal (a second SIGINT skips the wait for open requests) and replays it to ours once HTTP
has stopped: uvicorn's cooperative signal handling, used as it is meant to be.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import types
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, NoReturn, TypeVar, Union, get_args, get_origin

import uvicorn
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsError

from arc_common.logging import configure_logging
from arc_common.loop_watch import watching_loop
from arc_common.settings import ServiceSettings
from arc_common.tracing import setup_tracing

log = logging.getLogger(__name__)

EXIT_STOPPED = 0
EXIT_FAILED = 1
EXIT_BAD_SETTINGS = 2

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
WS_MAX_MESSAGE_BYTES = 1 << 20

S = TypeVar("S", bound=ServiceSettings)
R = TypeVar("R")
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "DSN", "CREDS")
_VALUE_SHOWN = 60


# -- settings ---------------------------------------------------------------------------------


def load_settings(settings_type: type[S]) -> S:
    """The service's settings from the environment, or one line on stderr and exit 2."""
    try:
        return settings_type()
    except (ValidationError, SettingsError) as exc:
        name = settings_type.model_fields["service_name"].default
        print(f"{name}: {describe_settings_error(exc, settings_type)}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None


def describe_settings_error(
    exc: ValidationError | SettingsError,
    settings_type: type[BaseSettings],
    environ: Mapping[str, str] | None = None,
) -> str:
    """One line: each bad variable by its `ARC_...` name, its value and what is wrong."""
    env = {k.upper(): v for k, v in (os.environ if environ is None else environ).items()}
    names = _EnvNames(settings_type)
    if isinstance(exc, SettingsError):
        problems = names.undecodable_json(env) or [_one_line(str(exc))]
    else:
        problems = [names.problem(error, env) for error in exc.errors()]
    noun = "setting" if len(problems) == 1 else "settings"
    return f"invalid {noun}: " + "; ".join(problems)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shown(variable: str, value: object) -> str:
    if any(word in variable for word in _SECRET_WORDS):
        return "'***'"
    text = repr(value)
    return text if len(text) <= _VALUE_SHOWN else text[: _VALUE_SHOWN - 3] + "..."


def _unwrapped(annotation: Any) -> Any:
    """`X | None` → `X`."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_group(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_json_valued(annotation: Any) -> bool:
    """Fields pydantic-settings reads from one variable as JSON (lists, maps, groups)."""
    origin = get_origin(annotation) or annotation
    return _is_group(annotation) or origin in (list, dict, set, frozenset, tuple)


class _EnvNames:
    """Maps pydantic error locations to the variables a person sets, and back."""

    def __init__(self, settings_type: type[BaseSettings]) -> None:
        self.settings_type = settings_type
        config = settings_type.model_config
        self.prefix = str(config.get("env_prefix") or "").upper()
        self.delimiter = str(config.get("env_nested_delimiter") or "__")

    def name(self, keys: list[str]) -> str:
        return self.prefix + self.delimiter.join(k.upper() for k in keys)

    def annotation(self, keys: list[str]) -> Any:
        """The type at `keys` (field names or aliases, any case), or None if there is none."""
        model: Any = self.settings_type
        annotation: Any = None
        for key in keys:
            if not _is_group(model):
                return None
            fields = {(f.alias or n).lower(): f for n, f in model.model_fields.items()} | {
                n.lower(): f for n, f in model.model_fields.items()
            }
            field = fields.get(key.lower())
            if field is None:
                return None
            annotation = _unwrapped(field.annotation)
            model = annotation
        return annotation

    def problem(self, error: Any, env: Mapping[str, str]) -> str:
        keys: list[str] = []
        item: int | None = None
        for part in error["loc"]:
            if isinstance(part, int):
                item = part
                break
            keys.append(str(part))
        # The variable actually set: `ARC_NATS__URL`, or `ARC_NATS` holding JSON for the group.
        depth = next((n for n in range(len(keys), 0, -1) if self.name(keys[:n]) in env), 0)
        variable = self.name(keys[:depth]) if depth else None
        message = error["msg"]
        if error["type"] == "value_error" and "error" in error.get("ctx", {}):
            message = str(error["ctx"]["error"])
        if variable is None:
            # A rule over a whole group (`ARC_VOICE__*`), or a value not from the environment.
            whole = self.name(keys)
            group = _is_group(self.annotation(keys))
            return _one_line(f"{whole}{self.delimiter + '*' if group else ''}: {message}")
        inside = ".".join(keys[depth:])  # the field within a JSON value, if any
        where = f"{variable} ({inside})" if inside else variable
        where = where if item is None else f"{where}[{item}]"
        value = error.get("input")
        shown = "" if isinstance(value, dict) else f"={_shown(variable, value)}"
        return _one_line(f"{where}{shown}: {message}")

    def undecodable_json(self, env: Mapping[str, str]) -> list[str]:
        """pydantic-settings parses list, map and group variables as JSON and names only the
        top-level field when that fails: find the variables at fault."""
        found = []
        for variable, value in sorted(env.items()):
            if not variable.startswith(self.prefix):
                continue
            keys = variable[len(self.prefix) :].split(self.delimiter)
            if not _is_json_valued(self.annotation(keys)):
                continue
            try:
                json.loads(value)
            except ValueError:
                found.append(
                    f"{variable}={_shown(variable, value)}: not valid JSON "
                    "(a list, or an object for a group, is expected)"
                )
        return found


# -- lifecycle --------------------------------------------------------------------------------


class _StopSignals:
    """SIGINT and SIGTERM for the life of the process.

    Before HTTP serves, the first one cancels the start-up. While uvicorn serves, its own
    handler is installed instead; a signal that lands here in that phase (just before uvicorn
    installs it, or replayed by uvicorn afterwards) goes to the server. Once HTTP has stopped
    the drain runs to its end whatever arrives (the supervisor's SIGKILL is the hard stop).
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self.server: uvicorn.Server | None = None
        self._startup: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self._previous: dict[signal.Signals, Any] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)

    def starting(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        self._startup = (loop, task)

    def opened(self) -> None:
        """Start-up is over: from now on nothing is cancelled, whatever arrives."""
        self._startup = None

    def serving(self, server: uvicorn.Server) -> None:
        self.server = server

    def _handle(self, signum: int, frame: types.FrameType | None) -> None:
        # No logging here: a handler that writes to stderr while the interrupted code is
        # writing there raises a reentrant-call error. `_serve` says what happened.
        first = self.received is None
        if first:
            self.received = signal.Signals(signum)
        if self.server is not None:
            self.server.handle_exit(signum, frame)  # no effect once it has stopped
        elif first and self._startup is not None:
            loop, _ = self._startup
            loop.call_soon_threadsafe(self._cancel_startup)

    def _cancel_startup(self) -> None:
        if self._startup is not None:  # still starting when the loop got to it
            self._startup[1].cancel()


def run_service(
    settings: S,
    open_resources: Callable[[S], AbstractAsyncContextManager[R]],
    build_app: Callable[[R], ASGIApp],
    *,
    host: str,
    port: int,
    graceful_s: int = 5,
    skip_teardown: bool = False,
) -> NoReturn:
    """Run the service until SIGTERM or SIGINT, then drain and exit (see the module doc).

    `skip_teardown`: once everything is closed and the logs flushed, leave without the
    interpreter's own teardown (`os._exit`). For a service whose native client can abort
    while the interpreter tears down (the Pulsar C++ client with a Python logger:
    apache/pulsar-client-python#256, "terminate called without an active exception", exit
    -6 instead of 0 in about one run in twenty)."""
    service = settings.service_name
    configure_logging(settings.log, service=service)
    telemetry = setup_tracing(settings.telemetry, service=service)
    stop = _StopSignals()
    code = EXIT_STOPPED
    try:
        with stop.installed():
            asyncio.run(_serve(settings, open_resources, build_app, stop, host, port, graceful_s))
            log.info("%s stopped", service)
    except Exception:
        log.exception("%s failed", service)
        code = EXIT_FAILED
    finally:
        telemetry.shutdown()
    if skip_teardown:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


async def _serve(
    settings: S,
    open_resources: Callable[[S], AbstractAsyncContextManager[R]],
    build_app: Callable[[R], ASGIApp],
    stop: _StopSignals,
    host: str,
    port: int,
    graceful_s: int,
) -> None:
    task = asyncio.current_task()
    assert task is not None
    stop.starting(asyncio.get_running_loop(), task)
    if stop.received is not None:
        log.info("stopping on %s before start-up", stop.received.name)
        return
    try:
        async with open_resources(settings) as resources:
            stop.opened()
            if stop.received is not None:
                # Stopped while starting: close what was opened.
                log.info("stopping on %s: start-up cancelled", stop.received.name)
                return
            config = uvicorn.Config(
                build_app(resources),
                host=host,
                port=port,
                lifespan="off",  # the resources above are the lifespan
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=graceful_s,
                # A WebSocket message past this closes the socket with 1009 before it is read
                # into memory (the voice service's /v1/voice; docs/websocket.md).
                ws_max_size=WS_MAX_MESSAGE_BYTES,
            )
            server = uvicorn.Server(config)
            stop.serving(server)
            log.info(
                "%s: resources open, starting HTTP on %s:%d", settings.service_name, host, port
            )
            # Watched only once open: a start-up that loads models on the loop is expected.
            async with watching_loop(settings.service_name):
                await server.serve()
            # HTTP has stopped; leaving the block closes the resources in reverse order.
            cause = stop.received.name if stop.received is not None else "HTTP server exit"
            log.info("stopping on %s: HTTP stopped, closing resources", cause)
    except asyncio.CancelledError:
        if stop.received is None:
            raise
        log.info("stopping on %s: start-up cancelled", stop.received.name)
