"""`make run` heals (issue 14, item 3): the supervisor restarts a real part that dies, counts
it (state file, `make status`, Prometheus), and stops the mesh only when a part keeps dying.
The parts are real nats-servers; the supervisor is what is under test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from arc_common.nats_connection import connect
from arc_common.settings import NatsSettings
from arc_stack.cli import status_report
from arc_stack.nats import NatsServer
from arc_stack.prometheus import PrometheusServer, ScrapeTargets, scrape_supervisor
from arc_stack.restarts import RestartPolicy, RestartRecord, record_path
from arc_stack.server import free_port
from arc_stack.supervisor import Supervisor, run_foreground

from tests.fixtures.prometheus import PrometheusFactory, query
from tests.fixtures.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass
class Run:
    """A `make run` of one part, in this process: its console lines and how it ended."""

    part: NatsServer
    supervisor: Supervisor
    stop: asyncio.Event
    task: asyncio.Task[int]
    lines: list[str] = field(default_factory=list)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def _nats(root: Path) -> NatsServer:
    return NatsServer(root / "data", root / "logs", port=free_port(), monitor_port=free_port())


@contextlib.asynccontextmanager
async def _running(tmp_path: Path, policy: RestartPolicy) -> AsyncIterator[Run]:
    lines: list[str] = []
    part = _nats(tmp_path)
    supervisor = Supervisor(
        [part],
        tmp_path / "state",
        say=lines.append,
        restart_policy=lambda: policy,
        poll_s=0.05,
        metrics_port=free_port(),
    )
    (tmp_path / "state").mkdir()
    stop = asyncio.Event()
    task = asyncio.create_task(run_foreground(supervisor, lambda: "BANNER", stop=stop))
    run = Run(part, supervisor, stop, task, lines)
    try:
        await wait_until(
            lambda: run.said("BANNER") or task.done(), timeout_s=20, what="nats up under make run"
        )
        assert not task.done(), lines
        yield run
    finally:
        stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, timeout=30)
        await part.stop()


async def _answers(part: NatsServer) -> bool:
    """A message makes the round trip through the server."""
    nc = await connect(NatsSettings(url=part.url), name="supervisor-test")
    try:
        sub = await nc.subscribe("supervisor.test.echo")
        await nc.publish("supervisor.test.echo", b"hello")
        message = await sub.next_msg(timeout=5)
        return message.data == b"hello"
    finally:
        await nc.close()


async def _metrics(port: int) -> str:
    async with httpx.AsyncClient(timeout=2.0) as client:
        answer = await client.get(f"http://127.0.0.1:{port}/metrics")
        answer.raise_for_status()
        return answer.text


async def test_a_killed_nats_is_restarted_counted_and_answers_again(tmp_path: Path) -> None:
    policy = RestartPolicy(first_delay_s=0.1, max_delay_s=1, max_restarts=5, window_s=60)
    async with _running(tmp_path, policy) as run:
        state = run.supervisor.state
        port = run.supervisor.metrics_port
        assert port is not None
        before = await _metrics(port)
        assert 'arc_supervisor_restarts_total{part="nats"} 0.0' in before
        assert 'arc_supervisor_part_up{part="nats"} 1.0' in before
        record = RestartRecord.read(record_path(state))
        assert record is not None and record.parts["nats"].restarts == 0

        old_pid = run.part.pid
        assert old_pid is not None
        os.killpg(old_pid, signal.SIGKILL)  # a crash: no goodbye to anyone

        await wait_until(
            lambda: run.said("✓ nats is up again"), timeout_s=20, what="nats restarted"
        )
        assert run.said("↻ nats died (exit -9), restarting in 0.1s (restart 1); log: "), run.lines
        assert run.part.pid not in (None, old_pid)
        assert (state / "pids" / "nats.pid").read_text() == str(run.part.pid)
        assert await _answers(run.part)
        assert not run.task.done()

        record = RestartRecord.read(record_path(state))
        assert record is not None
        nats = record.parts["nats"]
        assert (nats.restarts, nats.up, nats.last_exit) == (1, True, -9)
        assert nats.last_restart is not None

        after = await _metrics(port)
        assert 'arc_supervisor_restarts_total{part="nats"} 1.0' in after
        assert 'arc_supervisor_part_up{part="nats"} 1.0' in after

        # `make status` shows it: the function `arc status` prints.
        lines, healthy = await status_report([run.part], state)
        assert healthy, lines
        assert f"restarts 1 (last {nats.last_restart})" in lines[-1], lines
        assert lines[-1].startswith("✓ nats"), lines

        run.stop.set()
        assert await asyncio.wait_for(run.task, timeout=30) == 0
    assert run.said("Arc stopped.")


async def test_a_part_that_keeps_dying_stops_the_mesh_naming_it(tmp_path: Path) -> None:
    policy = RestartPolicy(first_delay_s=0.05, max_delay_s=0.2, max_restarts=2, window_s=60)
    # Its port is taken from now on: every restart of this real nats-server exits at once.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        async with _running(tmp_path, policy) as run:
            run.part.port = squatter.getsockname()[1]
            pid = run.part.pid
            assert pid is not None
            os.killpg(pid, signal.SIGKILL)
            code = await asyncio.wait_for(run.task, timeout=30)
    assert code == 1, run.lines
    assert run.said("↻ nats died (exit -9), restarting in 0.05s (restart 1)"), run.lines
    assert run.said("nats did not come back: nats exited with code 1 while starting"), run.lines
    assert run.said("↻ nats died (exit 1), restarting in 0.1s (restart 2)"), run.lines
    gave_up = [line for line in run.lines if line.startswith("✗ nats keeps dying")]
    assert gave_up == [
        "✗ nats keeps dying (exit 1): 3 deaths within 60s, more than the 2 restarts allowed; "
        f"stopping Arc. log: {run.part.log_path}"
    ], run.lines
    assert run.said("Arc stopped.")
    record = RestartRecord.read(record_path(run.supervisor.state))
    assert record is not None
    assert (record.parts["nats"].restarts, record.parts["nats"].up) == (2, False)


async def test_prometheus_scrapes_the_restarts_as_make_run_configures_it(
    tmp_path: Path, prometheus_factory: PrometheusFactory
) -> None:
    policy = RestartPolicy(first_delay_s=0.1, max_delay_s=1, max_restarts=5, window_s=60)
    async with _running(tmp_path, policy) as run:
        port = run.supervisor.metrics_port
        assert port is not None
        pid = run.part.pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        await wait_until(
            lambda: run.said("✓ nats is up again"), timeout_s=20, what="nats restarted"
        )
        # The job `arc run` adds to the Prometheus part (once, however often it is asked).
        configured = PrometheusServer(tmp_path / "p", tmp_path / "p", targets=ScrapeTargets())
        scrape_supervisor([run.part, configured], port)
        scrape_supervisor([configured], port)
        assert [(j.name, j.targets) for j in configured.targets.jobs] == [
            ("supervisor", [f"127.0.0.1:{port}"])
        ]
        prometheus = await prometheus_factory(configured.targets)
        restarts = await query(prometheus, 'arc_supervisor_restarts_total{job="supervisor"}')
        assert [(s["metric"]["part"], s["value"][1]) for s in restarts] == [("nats", "1")]
        up = await query(prometheus, 'arc_supervisor_part_up{job="supervisor"}')
        assert [(s["metric"]["part"], s["value"][1]) for s in up] == [("nats", "1")]
