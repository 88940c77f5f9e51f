"""The NATS permission matrix against a real nats-server configured as `make run` configures
it (`arc_stack.nats_auth`): anonymous clients are refused, each service user may say and
hear exactly what the contract gives it, and a violation is logged by the server without
costing the offender its connection.

The expected matrix is written out here by hand from ARCHITECTURE.md, not read from the code
under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from arc_stack.nats import NatsServer
from arc_stack.nats_auth import local_passwords, permission_matrix, server_config
from arc_stack.server import free_port
from nats.aio.client import Client
from nats.aio.msg import Msg

pytestmark = pytest.mark.integration

SUBJECTS = (
    "brain.request",
    "brain.cancel",
    "brain.commit",
    "tts.request",
    "tts.cancel",
    "agent.voice.track_published",
    "agent.voice.track_unpublished",
    "agent.session.started",
    "agent.session.ended",
    "agent.voice.announce",
    "_INBOX.someone",
    "$SRV.PING",
)
LIFECYCLE = {
    "agent.voice.track_published",
    "agent.voice.track_unpublished",
    "agent.session.started",
    "agent.session.ended",
}
# (publish, subscribe) each user is granted; everything else in SUBJECTS is denied.
GRANTED: dict[str, tuple[set[str], set[str]]] = {
    "voice": (
        {"brain.request", "brain.cancel", "brain.commit", "tts.request", "tts.cancel"} | LIFECYCLE,
        {"_INBOX.someone", "agent.voice.announce"},
    ),
    # brain.request and tts.request only in their queue groups (tested apart below).
    "brain": (set(), {"brain.cancel", "brain.commit", "$SRV.PING"}),
    "tts": (set(), {"tts.cancel", "$SRV.PING"}),
    "events": (set(), set()),
    "announcer": ({"agent.voice.announce"}, {"_INBOX.someone"}),
}
QUEUES = {"brain.request": "brain", "tts.request": "tts"}


@dataclass
class Secured:
    server: NatsServer
    passwords: dict[str, str]


@dataclass
class Session:
    client: Client
    violations: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def violation(self, within_s: float = 3.0) -> str:
        deadline = asyncio.get_running_loop().time() + within_s
        while not self.violations:
            assert asyncio.get_running_loop().time() < deadline, "no permissions violation"
            await asyncio.sleep(0.01)
        return self.violations.pop(0)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
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
        connect_timeout=3,
    )
    return session


@pytest_asyncio.fixture(loop_scope="session")
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


async def _can_publish(user: Session, operator: Session, subject: str) -> bool:
    heard: list[Msg] = []

    async def keep(msg: Msg) -> None:
        heard.append(msg)

    watch = await operator.client.subscribe(subject, cb=keep)
    await operator.client.flush()
    await user.client.publish(subject, b"probe")
    await user.client.flush()
    # Either the probe arrives or the server refuses it: wait for one of them (on a loaded
    # machine neither is instant), then make sure the other did not happen too.
    await _either(lambda: bool(heard), lambda: bool(user.violations))
    await operator.client.flush()
    await watch.unsubscribe()
    if heard:
        assert not [v for v in user.violations if "publish" in v.lower()], user.violations
        return True
    assert "permissions violation for publish" in (await user.violation()).lower()
    return False


async def _either(*conditions: Callable[[], bool], within_s: float = 15.0) -> None:
    """Until one condition holds. Generous: in the full suite this process also runs models
    in threads, and a stalled loop must not read as "neither happened"; the last look comes
    after a yield, so callbacks that were already due have run."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not any(condition() for condition in conditions):
        if asyncio.get_running_loop().time() > deadline:
            await asyncio.sleep(0.1)
            assert any(condition() for condition in conditions), "neither happened"
            return
        await asyncio.sleep(0.01)


async def _can_subscribe(user: Session, operator: Session, subject: str, queue: str = "") -> bool:
    heard: list[Msg] = []

    async def keep(msg: Msg) -> None:
        heard.append(msg)

    sub = await user.client.subscribe(subject, queue=queue, cb=keep)
    await user.client.flush()
    await operator.client.publish(subject, b"probe")
    await operator.client.flush()
    await _either(lambda: bool(heard), lambda: bool(user.violations))
    await user.client.flush()
    await sub.unsubscribe()
    if heard:
        assert not [v for v in user.violations if "subscription" in v.lower()], user.violations
        return True
    assert "permissions violation for subscription" in (await user.violation()).lower()
    user.violations.clear()
    return False


@pytest.mark.parametrize("user", sorted(GRANTED))
async def test_each_user_gets_exactly_its_grants(
    secured: Secured, operator: Session, user: str
) -> None:
    session = await _session(secured, user)
    try:
        may_publish, may_subscribe = GRANTED[user]
        for subject in SUBJECTS:
            assert await _can_publish(session, operator, subject) == (subject in may_publish), (
                f"{user} publish {subject}"
            )
            assert await _can_subscribe(session, operator, subject) == (subject in may_subscribe), (
                f"{user} subscribe {subject}"
            )
        # After every refusal the connection still serves what it may do.
        assert session.client.is_connected
    finally:
        await session.client.close()


@pytest.mark.parametrize(("user", "subject"), [("brain", "brain.request"), ("tts", "tts.request")])
async def test_requests_are_heard_only_in_the_services_queue_group(
    secured: Secured, operator: Session, user: str, subject: str
) -> None:
    session = await _session(secured, user)
    try:
        assert await _can_subscribe(session, operator, subject, queue=QUEUES[subject])
        assert not await _can_subscribe(session, operator, subject)
        assert not await _can_subscribe(session, operator, subject, queue="eavesdropper")
        assert not await _can_subscribe(session, operator, "voice.anything")
    finally:
        await session.client.close()


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
        await asyncio.wait_for(done.wait(), timeout=5)
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
