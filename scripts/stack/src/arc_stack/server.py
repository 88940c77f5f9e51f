"""A real server process the mesh installs, starts, health-checks and stops."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import httpx


class ServerStartError(RuntimeError):
    """A part of the mesh failed to install or start; the message names the part and its log."""


def _die_with_parent() -> None:
    """Runs in the child before exec: if the supervisor (or a test run) dies without stopping
    its servers, the kernel sends them SIGTERM instead of leaving them orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


# Ports handed out by this process: a probe socket closes at once, so without this two callers
# could be given the same port before either binds it.
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _pick_port(kind: socket.SocketKind) -> int:
    """A free port *below* the kernel's ephemeral range. A port the kernel picked for a probe
    (bind to 0) is an ephemeral one, and any outgoing connection on the machine (a NATS client,
    Pulsar's own bookie connections) may take it before the server binds it: CI lost a
    `make run` to exactly that ("address already in use" on the voice worker's port)."""
    low, _ = _ephemeral_range()
    candidates = range(20000, low) if low > 21000 else range(0)
    for _ in range(200):
        if not candidates:
            break
        port = random.choice(candidates)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    _handed_out.add(port)
    return port


def free_port() -> int:
    return _pick_port(socket.SOCK_STREAM)


def free_ports(count: int) -> list[int]:
    """`count` different free TCP ports."""
    return [free_port() for _ in range(count)]


def free_udp_port() -> int:
    return _pick_port(socket.SOCK_DGRAM)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


async def http_ok(url: str, *, timeout_s: float = 1.0, body: str | None = None) -> bool:
    """One health probe by GET: True when `url` answers 200 (and, given `body`, that text
    with surrounding white space stripped); False when it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            r = await client.get(url)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and (body is None or r.text.strip() == body)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last `lines` lines of a log, for an error message; "" when it cannot be read."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def run_logged(
    argv: Sequence[str],
    log_path: Path,
    *,
    label: str,
    timeout_s: float,
    shown: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    nice: bool = False,
) -> int:
    """One install step (a build, a download by a tool), its output appended to `log_path`
    between a `$ command` line and `<label> exited <code> after <s>`; returns the exit code.
    Cancelled (Ctrl-C during `make run`) or past `timeout_s`, the process is killed and
    awaited before the error propagates, so no build runs on for nobody. `nice` lowers its
    priority: a build must not starve a conversation running beside it. `OSError` when the
    program cannot be started."""
    began = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"$ {shown or ' '.join(argv)}\n".encode())
        log.flush()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env=None if env is None else dict(env),
            cwd=cwd,
            preexec_fn=(lambda: os.nice(10)) if nice else None,
        )
        try:
            code = await asyncio.wait_for(proc.wait(), timeout_s)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            log.write(f"{label} interrupted\n".encode())
            raise
        log.write(f"{label} exited {code} after {time.monotonic() - began:.1f}s\n".encode())
    return code


async def run_step(
    argv: Sequence[str],
    log_path: Path,
    *,
    what: str,
    label: str,
    timeout_s: float,
    command: str | None = None,
    shown: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    nice: bool = False,
    check: bool = True,
) -> int:
    """`run_logged` for an install step: `ServerStartError`, led by `what`, when the program
    cannot start, and (with `check`) ending with the log's tail when it exits non-zero; its
    exit code otherwise. The message names the step as `command` (default: `label`)."""
    try:
        code = await run_logged(
            argv,
            log_path,
            label=label,
            timeout_s=timeout_s,
            shown=shown,
            env=env,
            cwd=cwd,
            nice=nice,
        )
    except OSError as exc:
        raise ServerStartError(f"{what}: could not run `{label}` ({exc}); log: {log_path}") from exc
    if check and code != 0:
        raise ServerStartError(
            f"{what}: `{command or label}` failed with exit code {code}; log: {log_path}\n"
            f"{log_tail(log_path)}"
        )
    return code


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class ManagedServer(ABC):
    """One server of the mesh. Subclasses say how to install, run and health-check it; each
    is a dataclass too (`@dataclass(eq=False, kw_only=True)`), its settings keyword fields
    after the two directories. eq=False: a server is equal only to itself, and hashable.

    `install` must be idempotent and cheap when already done: `make run` and the test fixtures
    call it every time.
    """

    # A class attribute of each subclass (`name = "nats"`); an instance one for services.
    name: str = field(init=False)
    # How long a healthy start may take on a 2-core machine.
    start_timeout_s: ClassVar[float] = 30.0
    # The file (in `data_dir`) the server reads its configuration from, written from
    # `config_text()` on every start; None for a server configured by its command line.
    config_file: ClassVar[str | None] = None

    data_dir: Path
    log_dir: Path
    _proc: ServerProcess | None = field(default=None, init=False, repr=False)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def install_log_path(self) -> Path:
        """Where `install` logs its builds and downloads."""
        return self.log_dir / f"{self.name}-install.log"

    @property
    def config_path(self) -> Path:
        if self.config_file is None:
            raise AttributeError(f"{self.name} has no configuration file")
        return self.data_dir / self.config_file

    def config_text(self) -> str:
        """The content of `config_file`; servers that set one override this."""
        raise NotImplementedError

    async def install(self) -> None:
        """Fetch or build what the server needs; a no-op when already installed."""
        return None

    async def prepare(self) -> None:
        """Create the data directory and anything else needed before the process starts."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.config_file is not None:
            self.config_path.write_text(self.config_text())

    @abstractmethod
    def command(self) -> list[str]: ...

    def environment(self) -> Mapping[str, str]:
        return {}

    def run_as_user(self) -> str | None:
        return None

    @abstractmethod
    async def healthy(self) -> bool:
        """One health probe; True when the server answers as it should."""

    async def after_start(self) -> None:
        """Set-up that needs the running server (tenants, databases, migrations)."""
        return None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.process.pid if self._proc else None

    @property
    def exit_code(self) -> int | None:
        """How the last process ended (negative: the signal that killed it); None while it
        runs or when there is none."""
        return None if self._proc is None else self._proc.process.poll()

    def _tail_log(self, lines: int = 15) -> str:
        return log_tail(self.log_path, lines)

    async def start(self) -> None:
        await self.prepare()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.environment()}
        with self.log_path.open("ab") as log:
            # A new session keeps Ctrl-C in the terminal from reaching the servers directly:
            # the supervisor stops them in order instead. Popen (not asyncio's) because the
            # handle must outlive any one event loop; spawning itself does not block.
            process = subprocess.Popen(  # noqa: ASYNC220
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.data_dir,
                start_new_session=True,
                user=self.run_as_user(),
                preexec_fn=_die_with_parent,
            )
        self._proc = ServerProcess(self.name, process, self.log_path)
        await self.wait_healthy()
        await self.after_start()

    async def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.process.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self._proc.process.returncode} while "
                    f"starting; log: {self.log_path}\n{self._tail_log()}"
                )
            if await self.healthy():
                return
            await asyncio.sleep(0.2)
        raise ServerStartError(
            f"{self.name} did not become healthy within {self.start_timeout_s:.0f}s; "
            f"log: {self.log_path}\n{self._tail_log()}"
        )

    async def stop(self, timeout_s: float = 15.0) -> None:
        if self._proc is None:
            return
        process = self._proc.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await asyncio.to_thread(process.wait)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would (chaos tests)."""
        if self._proc is not None and self._proc.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.process.pid, signal.SIGKILL)
            self._proc.process.wait()
        self._proc = None
