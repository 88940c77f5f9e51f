"""NATS subjects, queue groups and Pulsar topics of the v1 contract."""

from __future__ import annotations

from typing import Final

BRAIN_REQUEST: Final = "brain.request"
BRAIN_CANCEL: Final = "brain.cancel"
# A tentative turn (answered on a guess, before the person's turn was confirmed) is stored only
# once the requester commits it; `brain.cancel` of a finished tentative turn discards it.
BRAIN_COMMIT: Final = "brain.commit"
BRAIN_QUEUE: Final = "brain"

TTS_REQUEST: Final = "tts.request"
TTS_CANCEL: Final = "tts.cancel"
TTS_QUEUE: Final = "tts"

VOICE_TRACK_PUBLISHED: Final = "agent.voice.track_published"
VOICE_TRACK_UNPUBLISHED: Final = "agent.voice.track_unpublished"
SESSION_STARTED: Final = "agent.session.started"
SESSION_ENDED: Final = "agent.session.ended"
VOICE_ANNOUNCE: Final = "agent.voice.announce"

PULSAR_TENANT: Final = "arc"
PULSAR_NAMESPACES: Final = ("events", "analytics")
TOPIC_CONVERSATION: Final = "persistent://arc/events/conversation"
TOPIC_AGENT_LIFECYCLE: Final = "persistent://arc/events/agent-lifecycle"
TOPIC_SESSION_METRICS: Final = "persistent://arc/analytics/session-metrics"


def prefixed(prefix: str, subject: str) -> str:
    """Subject under a namespace prefix; tests give each test its own prefix."""
    return f"{prefix}.{subject}" if prefix else subject
