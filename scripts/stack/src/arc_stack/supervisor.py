"""Runs the whole mesh in the foreground: install, start in order with progress, keep every
part up (restarting one that dies, with backoff), and stop everything in reverse order on
Ctrl-C or when a part keeps dying."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from arc_stack.restarts import PartRecord, RestartPolicy, RestartRecord, record_path
from arc_stack.server import ManagedServer, ServerStartError

Say = Callable[[str], None]


def default_say(line: str) -> None:
    print(line, flush=True)


async def _with_progress(
    label: str, work: asyncio.Future[Any], say: Say, every_s: float = 10.0
) -> None:
    """Await `work`, saying every few seconds that it is still going (Pulsar and the first
    LiveKit build are slow, and silence looks like a hang)."""
    started = time.monotonic()
    while True:
        done, _ = await asyncio.wait({work}, timeout=every_s)
        if done:
            work.result()
            return
        say(f"  … {label} ({time.monotonic() - started:.0f}s)")


class Supervisor:
    """Installs and starts the parts in order, then keeps them up: a part that dies is
    started again with backoff (`RestartPolicy`, one per part), and only a part that keeps
    dying stops the mesh. Restarts are said on the console, written to `.arc/supervisor.json`
    for `make status`, and counted for Prometheus (`serve_metrics`)."""

    def __init__(
        self,
        parts: Sequence[ManagedServer],
        state: Path,
        say: Say = default_say,
        *,
        restart_policy: Callable[[], RestartPolicy] = RestartPolicy,
        poll_s: float = 1.0,
        metrics_port: int | None = None,
    ) -> None:
        self.parts = list(parts)
        self.state = state
        self.say = say
        self.poll_s = poll_s
        self.metrics_port = metrics_port
        self.started: list[ManagedServer] = []
        self.record = RestartRecord()
        self._policies = {p.name: restart_policy() for p in self.parts}
        # When each part last came up (monotonic); absent while it is down or restarting.
        self._up_since: dict[str, float] = {}
        self._healing: dict[str, asyncio.Task[bool]] = {}
        self.registry = CollectorRegistry()
        self._restarts = Counter(
            "arc_supervisor_restarts",
            "Times `make run` started a part again after it died",
            ["part"],
            registry=self.registry,
        )
        up = Gauge(
            "arc_supervisor_part_up",
            "1 while the part's process runs and it is not being restarted",
            ["part"],
            registry=self.registry,
        )
        for part in self.parts:
            self._restarts.labels(part=part.name)
            up.labels(part=part.name).set_function(self._is_up(part))
        self._metrics_server: WSGIServer | None = None
        self._metrics_thread: threading.Thread | None = None

    def _is_up(self, part: ManagedServer) -> Callable[[], float]:
        return lambda: 1.0 if part.name in self._up_since and part.running else 0.0

    @property
    def pid_dir(self) -> Path:
        path = self.state / "pids"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def record_path(self) -> Path:
        return record_path(self.state)

    def _write_record(self) -> None:
        try:
            self.record.write(self.record_path)
        except OSError as exc:  # a full disk must not take the mesh down with it
            self.say(f"  (could not write {self.record_path}: {exc})")

    def serve_metrics(self) -> None:
        """Serve the restart metrics on 127.0.0.1:`metrics_port` (Prometheus's `supervisor`
        job); OSError when the port is taken."""
        if self.metrics_port is None or self._metrics_server is not None:
            return
        self._metrics_server, self._metrics_thread = start_http_server(
            self.metrics_port, "127.0.0.1", registry=self.registry
        )

    def close_metrics(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        if self._metrics_thread is not None:
            self._metrics_thread.join(timeout=5)
        self._metrics_server = self._metrics_thread = None

    async def install(self) -> None:
        async def one(part: ManagedServer) -> None:
            began = time.monotonic()
            await part.install()
            self.say(f"✓ {part.name} installed ({time.monotonic() - began:.1f}s)")

        tasks = [asyncio.create_task(one(p), name=f"install:{p.name}") for p in self.parts]
        try:
            await _with_progress("installing", asyncio.gather(*tasks), self.say, every_s=15.0)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def start(self) -> None:
        # A new run starts at zero restarts.
        self.record = RestartRecord(parts={p.name: PartRecord() for p in self.parts})
        self._write_record()
        for part in self.parts:
            began = time.monotonic()
            self.say(f"▸ starting {part.name} (log: {part.log_path})")
            task = asyncio.create_task(part.start(), name=f"start:{part.name}")
            try:
                await _with_progress(f"waiting for {part.name}", task, self.say)
            except BaseException:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                await part.stop()
                raise
            self.started.append(part)
            self._came_up(part)
            self.say(f"✓ {part.name} is up ({time.monotonic() - began:.1f}s)")

    def _came_up(self, part: ManagedServer) -> None:
        self._up_since[part.name] = time.monotonic()
        self.record.part(part.name).up = True
        self._write_record()
        if part.pid is not None:
            (self.pid_dir / f"{part.name}.pid").write_text(str(part.pid))

    async def stop(self) -> None:
        for part in reversed(self.started):
            self.say(f"▸ stopping {part.name}")
            self._up_since.pop(part.name, None)
            await part.stop()
            (self.pid_dir / f"{part.name}.pid").unlink(missing_ok=True)
            self.record.part(part.name).up = False
        if self.started:
            self._write_record()
        self.started.clear()

    async def watch(self, stop: asyncio.Event) -> str | None:
        """Keep every started part up until `stop` is set (returns None). A part that dies is
        restarted in the background; one that keeps dying ends the watch (returns its name,
        the reason already said)."""
        try:
            while not stop.is_set():
                for part in self.started:
                    healing = self._healing.get(part.name)
                    if healing is None:
                        if not part.running:
                            self._healing[part.name] = asyncio.create_task(
                                self._heal(part), name=f"restart:{part.name}"
                            )
                    elif healing.done():
                        del self._healing[part.name]
                        if not healing.result():
                            return part.name
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_s)
            return None
        finally:
            tasks = list(self._healing.values())
            self._healing.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _heal(self, part: ManagedServer) -> bool:
        """`part` died: start it again, after the policy's backoff, until it is up (True) or
        the policy gives up on it (False). A start that fails counts as another death. Only
        the dead part restarts: the others' clients (NATS, Postgres) reconnect by themselves."""
        policy = self._policies[part.name]
        record = self.record.part(part.name)
        while True:
            code = part.exit_code
            since = self._up_since.pop(part.name, None)
            up_for = None if since is None else time.monotonic() - since
            await _clear(part)
            (self.pid_dir / f"{part.name}.pid").unlink(missing_ok=True)
            record.up, record.last_exit = False, code
            self._write_record()
            decision = policy.on_death(time.monotonic(), up_for)
            how = "no exit code" if code is None else f"exit {code}"
            if decision.delay_s is None:
                self.say(
                    f"✗ {part.name} keeps dying ({how}): {decision.deaths_in_window} deaths "
                    f"within {policy.window_s:g}s, more than the {policy.max_restarts} "
                    f"restarts allowed; stopping Arc. log: {part.log_path}"
                )
                return False
            self.say(
                f"↻ {part.name} died ({how}), restarting in {decision.delay_s:g}s "
                f"(restart {record.restarts + 1}); log: {part.log_path}"
            )
            await asyncio.sleep(decision.delay_s)
            self.record.restarted(part.name)
            self._restarts.labels(part=part.name).inc()
            self._write_record()
            try:
                await part.start()
            except Exception as exc:  # any failed start is one more death for the policy
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.say(f"  {part.name} did not come back: {first_line}")
                continue
            self._came_up(part)
            self.say(f"✓ {part.name} is up again")
            return True


async def _clear(part: ManagedServer) -> None:
    """Forget a dead part's process, first killing what is left of its process group: a
    dead leader can leave children (Postgres backends, a JVM's helpers) holding its ports."""
    pid = part.pid
    if pid is not None and not part.running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    await part.stop()


def run_pid_file(state: Path) -> Path:
    return state / "run.pid"


def running_supervisor_pid(state: Path) -> int | None:
    try:
        pid = int(run_pid_file(state).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


async def run_foreground(
    supervisor: Supervisor, banner: Callable[[], str], stop: asyncio.Event | None = None
) -> int:
    """`make run`: 0 after Ctrl-C, SIGTERM (`make stop`) or `stop`; 1 when a part fails to
    start or keeps dying."""
    state = supervisor.state
    other = running_supervisor_pid(state)
    if other is not None and other != os.getpid():
        supervisor.say(f"Arc is already running (pid {other}); `make stop` stops it.")
        return 1
    try:
        supervisor.serve_metrics()
    except OSError as exc:
        supervisor.say(
            f"✗ supervisor metrics: cannot listen on 127.0.0.1:{supervisor.metrics_port} "
            f"({exc}); free it or set ARC_SUPERVISOR_METRICS_PORT"
        )
        return 1
    run_pid_file(state).write_text(str(os.getpid()))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await supervisor.install()
            await supervisor.start()
        except ServerStartError as exc:
            supervisor.say(f"✗ {exc}")
            return 1
        except asyncio.CancelledError:
            return 130
        supervisor.say(banner())
        gave_up = await supervisor.watch(stop)
        return 0 if gave_up is None else 1
    finally:
        supervisor.say("Stopping Arc…")
        await supervisor.stop()
        supervisor.close_metrics()
        run_pid_file(state).unlink(missing_ok=True)
        for sig in signals:
            loop.remove_signal_handler(sig)
        supervisor.say("Arc stopped.")
        sys.stdout.flush()


def stop_running(state: Path, say: Say = default_say, timeout_s: float = 90.0) -> int:
    """`make stop`: ask a running `make run` to stop, then clean up any orphaned part."""
    pid = running_supervisor_pid(state)
    if pid is not None:
        say(f"Stopping Arc (pid {pid})…")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and running_supervisor_pid(state) == pid:
            time.sleep(0.2)
    pid_dir = state / "pids"
    for pid_file in sorted(pid_dir.glob("*.pid")) if pid_dir.exists() else []:
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            orphan = int(pid_file.read_text().strip())
            os.killpg(orphan, signal.SIGTERM)
            say(f"Stopped orphaned {pid_file.stem} (pid {orphan}).")
        pid_file.unlink(missing_ok=True)
    if pid is None:
        say("Arc was not running.")
    return 0
