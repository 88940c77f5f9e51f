"""The NATS permission matrix against a real nats-server configured as `make run` configures
it (`arc_stack.nats_auth`): anonymous clients are refused, each service user may say and
hear exactly what the contract gives it, and a violation is logged by the server without
costing the offender its connection.

The expected matrix is written out here by hand from ARCHITECTURE.md, not read from the code
under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from arc_stack.nats import NatsServer
from arc_stack.nats_auth import (
    local_passwords,
    permission_matrix,
    server_config,
    write_production_secrets,
)
from arc_stack.server import free_port
from nats.aio.client import Client
from nats.aio.msg import Msg

# Its own event loop: on the session's loop, tasks other tests left behind (in one run,
# after tests/integration/test_streaming_rpc.py) now and then delayed these callbacks past
# any wait, so a probe read as neither delivered nor refused.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SUBJECTS = (
    "brain.request",
    "brain.cancel",
    "brain.commit",
    "brain.session.delete",
    "brain.truncate",
    "tts.request",
    "tts.request.abc123",
    "tts.cancel",
    "tts.admin.abc123",
    "agent.voice.track_published",
    "agent.voice.track_unpublished",
    "agent.session.started",
    "agent.session.ended",
    "agent.voice.announce",
    "agent.voice.worker",
    "agent.voice.worker.abc123",
    "_INBOX.someone",
    "$SRV.PING",
    "$SRV.PING.arc-brain.abc123",
    "$SRV.STATS.arc-tts",
)
SRV_STATS = "$SRV.STATS.arc-tts"
# (publish, subscribe) each user is granted; everything else in SUBJECTS is denied.
GRANTED: dict[str, tuple[set[str], set[str]]] = {
    # The voice worker publishes everywhere but the TTS admin subject (the operator's), the
    # announcer's subject, another client's inbox and the bare ping.
    "voice": (
        set(SUBJECTS) - {"tts.admin.abc123", "agent.voice.announce", "_INBOX.someone", "$SRV.PING"},
        {
            "_INBOX.someone",
            "agent.voice.announce",
            "agent.voice.worker",
            "agent.voice.worker.abc123",
        },
    ),
    # brain.request, brain.session.delete, brain.truncate and tts.request only in their queue
    # groups (tested apart below).
    "brain": (
        set(),
        {"brain.cancel", "brain.commit", "$SRV.PING", "$SRV.PING.arc-brain.abc123", SRV_STATS},
    ),
    # tts.admin.<id>: its own admin subject; only the operator may ask there.
    "tts": (
        set(),
        {"tts.cancel", "tts.admin.abc123", "$SRV.PING", "$SRV.PING.arc-brain.abc123", SRV_STATS},
    ),
    "events": (set(), set()),
    "announcer": ({"agent.voice.announce"}, {"_INBOX.someone"}),
}
QUEUES = {
    "brain.request": "brain",
    "brain.session.delete": "brain",
    "brain.truncate": "brain",
    "tts.request": "tts",
    "tts.request.abc123": "tts",
}
# How long a connection, or a probe's delivery or refusal, may take on a box a CI neighbour
# slows fourfold; only an inconclusive probe waits it out.
PROBE_S = 10


@dataclass
class Secured:
    server: NatsServer
    passwords: dict[str, str]


@dataclass
class Session:
    client: Client
    violations: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def violation(self, within_s: float = PROBE_S) -> str:
        deadline = asyncio.get_running_loop().time() + within_s
        while not self.violations:
            assert asyncio.get_running_loop().time() < deadline, "no permissions violation"
            await asyncio.sleep(0.01)
        return self.violations.pop(0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secured]:
    root: Path = tmp_path_factory.mktemp("nats-auth")
    matrix = permission_matrix()
    passwords = local_passwords(root, list(matrix))
    server = NatsServer(
        root / "data",
        root / "logs",
        port=free_port(),
        monitor_port=free_port(),
        authorization=server_config(passwords, matrix),
    )
    await server.start()
    yield Secured(server, passwords)
    await server.stop()


async def _session(secured: Secured, user: str) -> Session:
    session = Session(client=Client())

    async def on_error(error: Exception) -> None:
        session.violations.append(str(error))

    await session.client.connect(
        secured.server.url,
        user=user,
        password=secured.passwords[user],
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=PROBE_S,
    )
    return session


@pytest_asyncio.fixture(loop_scope="module")
async def operator(secured: Secured) -> AsyncIterator[Session]:
    session = await _session(secured, "operator")
    yield session
    await session.client.close()


async def test_anonymous_and_wrong_passwords_are_refused(secured: Secured) -> None:
    for credentials in ({}, {"user": "voice", "password": "not-the-password"}):
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await nats.connect(
                secured.server.url,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                connect_timeout=3,
                **credentials,
            )


class Inconclusive(Exception):
    """The probe was neither delivered nor refused in time: ask again."""


async def _can_publish(user: Session, operator: Session, subject: str) -> bool:
    return await _probe(user, operator, subject, "publish")


async def _can_subscribe(user: Session, operator: Session, subject: str, queue: str = "") -> bool:
    return await _probe(user, operator, subject, "subscription", queue=queue)


async def _probe(
    user: Session, operator: Session, subject: str, action: str, queue: str = ""
) -> bool:
    """Whether `user` may publish to `subject` (the operator listens) or subscribe to it (the
    operator talks), per `action` as nats-server names it in a violation."""
    listener, talker = (operator, user) if action == "publish" else (user, operator)
    heard: list[Msg] = []

    async def keep(msg: Msg) -> None:
        heard.append(msg)

    sub = await listener.client.subscribe(subject, queue=queue, cb=keep)
    await listener.client.flush()
    await talker.client.publish(subject, b"probe")
    await talker.client.flush()
    # Either the probe arrives or the server refuses it: wait for one of them (on a loaded
    # machine neither is instant), then make sure the other did not happen too.
    concluded = await _either(lambda: bool(heard), lambda: bool(user.violations))
    await listener.client.flush()
    await sub.unsubscribe()
    if not concluded:
        raise Inconclusive(f"{action} {subject}")
    if heard:
        assert not [v for v in user.violations if action in v.lower()], user.violations
        return True
    assert f"permissions violation for {action}" in (await user.violation()).lower()
    user.violations.clear()
    return False


async def _either(*conditions: Callable[[], bool], within_s: float = PROBE_S) -> bool:
    """Until one condition holds; False when none did in time (after a last look that lets
    callbacks already due run)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not any(condition() for condition in conditions):
        if asyncio.get_running_loop().time() > deadline:
            await asyncio.sleep(0.1)
            return any(condition() for condition in conditions)
        await asyncio.sleep(0.01)
    return True


@pytest.mark.parametrize("user", sorted(GRANTED))
async def test_each_user_gets_exactly_its_grants(
    secured: Secured, operator: Session, user: str
) -> None:
    may_publish, may_subscribe = GRANTED[user]
    # A fresh connection per check: on one connection, after a refusal on a subject, a later
    # operation on that subject was now and then neither delivered nor refused by nats-server
    # (seen in 1 run of 5 here). Services never do what they may not, so each check starts
    # clean; that a refused client keeps its connection is checked below.
    for subject in SUBJECTS:
        for check, granted in ((_can_subscribe, may_subscribe), (_can_publish, may_publish)):
            assert await _answered(secured, operator, user, check, subject) == (
                subject in granted
            ), f"{user} {check.__name__} {subject}"


async def _answered(
    secured: Secured,
    operator: Session,
    user: str,
    check: Callable[[Session, Session, str], Awaitable[bool]],
    subject: str,
) -> bool:
    """The check's verdict on a fresh connection. A probe neither delivered nor refused
    within `PROBE_S` (at 3 s, about 1 in 150 here, even alone on a quiet machine) is asked
    again, at most twice more: a verdict needs one or the other."""
    for _ in range(3):
        session = await _session(secured, user)
        try:
            verdict = await check(session, operator, subject)
            assert session.client.is_connected  # a refusal costs no connection
            return verdict
        except Inconclusive:
            continue
        finally:
            await session.client.close()
    raise AssertionError(f"{user}: {check.__name__} {subject}: no verdict in 3 tries")


def _in_queue(queue: str) -> Callable[[Session, Session, str], Awaitable[bool]]:
    """`_can_subscribe` in `queue` ("": outside any queue), as a check `_answered` asks."""

    async def check(session: Session, operator: Session, subject: str) -> bool:
        return await _can_subscribe(session, operator, subject, queue=queue)

    check.__name__ = f"subscribe in queue {queue or '(none)'}"
    return check


@pytest.mark.parametrize(
    ("user", "subject"),
    [
        ("brain", "brain.request"),
        ("brain", "brain.session.delete"),
        ("tts", "tts.request"),
        ("tts", "tts.request.abc123"),
    ],
)
async def test_requests_are_heard_only_in_the_services_queue_group(
    secured: Secured, operator: Session, user: str, subject: str
) -> None:
    assert await _answered(secured, operator, user, _in_queue(QUEUES[subject]), subject)
    for queue in ("", "eavesdropper"):
        assert not await _answered(secured, operator, user, _in_queue(queue), subject)
    assert not await _answered(secured, operator, user, _in_queue(""), "voice.anything")


async def test_a_service_streams_its_answer_to_the_reply_subject_only(
    secured: Secured,
) -> None:
    """The brain answers a voice worker's request with many chunks on its reply subject, and
    may not publish to an inbox nobody asked it to."""
    voice = await _session(secured, "voice")
    brain = await _session(secured, "brain")
    try:
        answers: list[bytes] = []

        async def answer(msg: Msg) -> None:
            for n in range(50):
                await brain.client.publish(msg.reply, str(n).encode())
            # Without it nats.py now and then sent only the first (1 run in 60 here, also
            # without any permissions): its flusher is not woken for the rest.
            await brain.client.flush()

        await brain.client.subscribe("brain.request", queue="brain", cb=answer)
        inbox = voice.client.new_inbox()
        done = asyncio.Event()

        async def hear(msg: Msg) -> None:
            answers.append(msg.data)
            if len(answers) == 50:
                done.set()

        await voice.client.subscribe(inbox, cb=hear)
        await brain.client.flush()
        await voice.client.publish("brain.request", b"question", reply=inbox)
        try:
            await asyncio.wait_for(done.wait(), timeout=15)
        except TimeoutError:
            # Seen once in CI (2026-12-07) and not reproduced: which side lost the chunks.
            pytest.fail(
                f"{len(answers)} of 50 chunks in 15 s; violations: brain {brain.violations},"
                f" voice {voice.violations}; brain {brain.client.stats}, voice"
                f" {voice.client.stats}"
            )
        assert answers == [str(n).encode() for n in range(50)]

        await brain.client.publish("_INBOX.not-asked", b"spoof")
        await brain.client.flush()
        assert "permissions violation for publish" in (await brain.violation()).lower()
        assert brain.client.is_connected and voice.client.is_connected
    finally:
        await voice.client.close()
        await brain.client.close()
    log = secured.server.log_path.read_text()
    assert '"$G/user:brain" - Publish Violation - Subject "_INBOX.not-asked"' in log, log[-2000:]


async def test_production_secrets_configure_a_server_with_the_same_grants(
    tmp_path: Path,
) -> None:
    """`arc nats-secrets` (compose's SECRETS_DIR): a password per user, kept when run again,
    and an `authorization` config that a real nats-server, given its ports and store as
    flags the way compose does, enforces with the same grants as `make run`'s."""
    folder = tmp_path / "secrets"
    write_production_secrets(folder)
    users = ("voice", "brain", "tts", "events", "announcer", "operator")
    passwords = {u: (folder / f"nats_password_{u}").read_text().strip() for u in users}
    assert len(set(passwords.values())) == len(users)
    write_production_secrets(folder)
    assert {u: (folder / f"nats_password_{u}").read_text().strip() for u in users} == passwords
    for path in folder.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path

    server = NatsServer(
        tmp_path / "data",
        tmp_path / "logs",
        port=free_port(),
        monitor_port=free_port(),
        authorization=(folder / "nats_config").read_text(),
    )
    await server.start()
    production = Secured(server, passwords)
    operator = await _session(production, "operator")
    try:
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await nats.connect(server.url, allow_reconnect=False, connect_timeout=3)
        assert await _answered(production, operator, "brain", _in_queue("brain"), "brain.request")
        assert not await _answered(production, operator, "brain", _in_queue(""), "brain.request")
        assert not await _answered(production, operator, "tts", _in_queue(""), "brain.request")
        assert await _answered(production, operator, "voice", _can_publish, "brain.request")
        assert not await _answered(production, operator, "events", _can_publish, "brain.request")
        assert await _answered(
            production, operator, "announcer", _can_publish, "agent.voice.announce"
        )
    finally:
        await operator.client.close()
        await server.stop()
