"""NATS subjects, queue groups and Pulsar topics of the v1 contract, and the Pulsar tenant
and namespaces those topics live in, with the one routine that sets them up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

from arc_common.errors import Internal

BRAIN_REQUEST: Final = "brain.request"
BRAIN_CANCEL: Final = "brain.cancel"
# A tentative turn (answered on a guess, before the person's turn was confirmed) is stored only
# once the requester commits it; `brain.cancel` of a finished tentative turn discards it.
BRAIN_COMMIT: Final = "brain.commit"
BRAIN_QUEUE: Final = "brain"
# Request/reply (queue group `brain`): delete one session's conversation history, which the
# brain alone writes; the voice worker asks when an operator deletes a session.
BRAIN_SESSION_DELETE: Final = "brain.session.delete"
# Request/reply (queue group `brain`): an interrupted answer becomes what the person heard of
# it; the voice worker asks, the brain writes (it alone writes conversation history).
BRAIN_TRUNCATE: Final = "brain.truncate"
# Voice workers in LiveKit dispatch mode tell each other they are alive and which rooms and
# sessions they serve (a beat every 0.5 s); the survivors re-dispatch a silent one's rooms.
VOICE_WORKER_BEAT: Final = "agent.voice.worker"

TTS_REQUEST: Final = "tts.request"
# `tts.request.<instance>` (queue group `tts`, one member): the same request, to the one TTS
# worker whose `$SRV.STATS` said it has the voice loaded (its `direct_subject`).
TTS_CANCEL: Final = "tts.cancel"
TTS_QUEUE: Final = "tts"
# The TTS workers' `micro` service name: `$SRV.PING/INFO/STATS.arc-tts` find them.
TTS_SERVICE: Final = "arc-tts"
# Request/reply, no queue group: `tts.admin.<instance>` lists, loads or unloads the voices of
# the one TTS worker whose `$SRV.INFO` id is <instance> (an operator's tool, `arc voices`).
TTS_ADMIN: Final = "tts.admin"

VOICE_TRACK_PUBLISHED: Final = "agent.voice.track_published"
VOICE_TRACK_UNPUBLISHED: Final = "agent.voice.track_unpublished"
SESSION_STARTED: Final = "agent.session.started"
SESSION_ENDED: Final = "agent.session.ended"
VOICE_ANNOUNCE: Final = "agent.voice.announce"


@dataclass(frozen=True, slots=True)
class PulsarNamespace:
    """A namespace of the tenant and its retention: a consumer that falls behind, or a new one
    replaying history, can still read what others acknowledged."""

    name: str
    retention_minutes: int
    retention_mb: int


PULSAR_TENANT: Final = "arc"
PULSAR_NAMESPACES: Final = (
    PulsarNamespace("events", retention_minutes=7 * 24 * 60, retention_mb=1024),
    PulsarNamespace("analytics", retention_minutes=30 * 24 * 60, retention_mb=1024),
)
TOPIC_CONVERSATION: Final = "persistent://arc/events/conversation"
TOPIC_AGENT_LIFECYCLE: Final = "persistent://arc/events/agent-lifecycle"
TOPIC_SESSION_METRICS: Final = "persistent://arc/analytics/session-metrics"


def prefixed(prefix: str, subject: str) -> str:
    """Subject under a namespace prefix; tests give each test its own prefix."""
    return f"{prefix}.{subject}" if prefix else subject


def tts_admin(prefix: str, instance: str) -> str:
    """The admin subject of one TTS worker."""
    return prefixed(prefix, f"{TTS_ADMIN}.{instance}")


class AdminResponse(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self, **kwargs: Any) -> Any: ...


class PulsarAdminHttp(Protocol):
    """An HTTP client on the broker's admin URL, such as `httpx.AsyncClient(base_url=...)`."""

    async def get(self, url: str) -> AdminResponse: ...

    async def put(self, url: str, *, json: Any = None) -> AdminResponse: ...

    async def post(self, url: str, *, json: Any = None) -> AdminResponse: ...


def _check(response: AdminResponse, what: str, *, conflict_ok: bool = False) -> None:
    if 200 <= response.status_code < 300 or (conflict_ok and response.status_code == 409):
        return
    raise Internal(
        f"pulsar admin: {what} failed with HTTP {response.status_code}: {response.text[:300]}"
    )


async def ensure_pulsar_namespaces(admin: PulsarAdminHttp) -> None:
    """The tenant (created, when missing, on every cluster the broker knows), each namespace,
    its retention where none is set (an operator's own setting stays), and de-duplication on:
    the broker drops a re-sent message whose producer sequence id it has seen, so the outbox
    relay's retries after an outage are no-ops. Idempotent: every start runs it. Failures
    raise `Internal` naming the step."""
    tenant = f"/admin/v2/tenants/{PULSAR_TENANT}"
    found = await admin.get(tenant)
    if found.status_code == 404:
        clusters = await admin.get("/admin/v2/clusters")
        _check(clusters, "list clusters")
        body = {"allowedClusters": clusters.json(), "adminRoles": []}
        _check(
            await admin.put(tenant, json=body), f"create tenant {PULSAR_TENANT}", conflict_ok=True
        )
    else:
        _check(found, f"read tenant {PULSAR_TENANT}")
    for namespace in PULSAR_NAMESPACES:
        name = f"{PULSAR_TENANT}/{namespace.name}"
        path = f"/admin/v2/namespaces/{name}"
        _check(await admin.put(path, json={}), f"create namespace {name}", conflict_ok=True)
        current = await admin.get(f"{path}/retention")
        _check(current, f"read retention of {name}")
        retention = current.json() if current.text.strip() else None
        if not retention or not retention.get("retentionTimeInMinutes"):
            wanted = {
                "retentionTimeInMinutes": namespace.retention_minutes,
                "retentionSizeInMB": namespace.retention_mb,
            }
            r = await admin.post(f"{path}/retention", json=wanted)
            _check(r, f"set retention of {name}")
        r = await admin.post(f"{path}/deduplication", json=True)
        _check(r, f"turn on de-duplication of {name}")
