"""Runs the whole mesh in the foreground: install, start in order with progress, watch, and
stop everything in reverse order on Ctrl-C or when a part dies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
    def __init__(self, parts: Sequence[ManagedServer], state: Path, say: Say = default_say) -> None:
        self.parts = list(parts)
        self.state = state
        self.say = say
        self.started: list[ManagedServer] = []

    @property
    def pid_dir(self) -> Path:
        path = self.state / "pids"
        path.mkdir(parents=True, exist_ok=True)
        return path

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
            if part.pid is not None:
                (self.pid_dir / f"{part.name}.pid").write_text(str(part.pid))
            self.say(f"✓ {part.name} is up ({time.monotonic() - began:.1f}s)")

    async def stop(self) -> None:
        for part in reversed(self.started):
            self.say(f"▸ stopping {part.name}")
            await part.stop()
            (self.pid_dir / f"{part.name}.pid").unlink(missing_ok=True)
        self.started.clear()

    async def watch(self, stop: asyncio.Event) -> str | None:
        """Wait for Ctrl-C (returns None) or for a part to die (returns its name)."""
        while not stop.is_set():
            for part in self.started:
                if not part.running:
                    return part.name
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        return None


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


async def run_foreground(supervisor: Supervisor, banner: Callable[[], str]) -> int:
    state = supervisor.state
    other = running_supervisor_pid(state)
    if other is not None and other != os.getpid():
        supervisor.say(f"Arc is already running (pid {other}); `make stop` stops it.")
        return 1
    run_pid_file(state).write_text(str(os.getpid()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
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
        died = await supervisor.watch(stop)
        if died is not None:
            part = next(p for p in supervisor.started if p.name == died)
            supervisor.say(f"✗ {died} stopped unexpectedly; log: {part.log_path}")
            return 1
        return 0
    finally:
        supervisor.say("Stopping Arc…")
        await supervisor.stop()
        run_pid_file(state).unlink(missing_ok=True)
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
