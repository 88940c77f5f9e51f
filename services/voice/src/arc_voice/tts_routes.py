"""Which TTS worker speaks a unit: the one that already has its voice loaded.

Every TTS worker reports in `$SRV.STATS.arc-tts` the voices it holds in memory, its free
streams and its own request subject (`tts.request.<instance>`). The voice worker asks for
those stats every `tts_route_refresh_s` and keeps the latest answer. A unit whose voice some
workers hold and others do not goes to one that holds it (the most free streams first):
through the queue group it would land on a worker that loads the voice first (about a
second of silence), and then holds one more voice in memory. Everything else (the default
voice every worker pins, a voice no worker holds, stats not yet heard) goes to the queue
group, which spreads the load as before. docs/tts.md, "Routing by resident voice".
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from arc_common.discovery import endpoint_on, gather
from arc_common.periodic import Periodic
from arc_common.subjects import TTS_REQUEST, TTS_SERVICE, prefixed
from nats.aio.client import Client
from nats.micro.service import ServiceVerb

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TtsInstance:
    """One TTS worker as its last `$SRV.STATS` answer described it."""

    subject: str
    resident: frozenset[str]
    free_streams: int
    seen_at: float


def parse_stats(answer: Mapping[str, Any], request_subject: str, now: float) -> TtsInstance | None:
    """The worker in one `$SRV.STATS` answer, if it serves `request_subject` and says where
    it can be asked directly; None for anything else (another prefix, an older worker)."""
    endpoint = endpoint_on(answer, request_subject)
    data = None if endpoint is None else endpoint.get("data")
    if not isinstance(data, dict):
        return None
    subject = data.get("direct_subject")
    resident = data.get("voices_resident")
    free = data.get("free_streams")
    if not isinstance(subject, str) or not isinstance(resident, list) or not isinstance(free, int):
        return None
    return TtsInstance(subject, frozenset(map(str, resident)), free, now)


def choose(
    instances: Iterable[TtsInstance],
    voice: str | None,
    *,
    now: float,
    stale_after_s: float,
    pick: Callable[[list[str]], str] = random.choice,
) -> str | None:
    """The direct subject of the worker to ask for `voice`, or None for the queue group."""
    if voice is None:
        return None  # each worker's default voice, pinned in every one of them
    fresh = [i for i in instances if now - i.seen_at <= stale_after_s]
    holding = [i for i in fresh if voice in i.resident and i.free_streams > 0]
    if not holding or len(holding) == len(fresh):
        # Nobody holds it (whoever the queue picks loads it), or everybody can speak it
        # at once (the queue spreads the load as well as a choice here would).
        return None
    most = max(i.free_streams for i in holding)
    return pick([i.subject for i in holding if i.free_streams == most])


class TtsRoutes:
    """The worker's view of the TTS workers, refreshed by one task it owns."""

    def __init__(
        self,
        nc: Client,
        *,
        subject_prefix: str = "",
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nc = nc
        self._request_subject = prefixed(subject_prefix, TTS_REQUEST)
        self._refresh_s = refresh_s
        self._clock = clock
        self._instances: dict[str, TtsInstance] = {}
        self._refreshes = Periodic(
            self.refresh,
            refresh_s,
            name="tts-routes",
            log=log,
            # NATS away: the table ages out, and every unit goes to the queue group.
            failure="tts routes not refreshed",
            failure_level=logging.DEBUG,
        )

    @property
    def instances(self) -> list[TtsInstance]:
        return list(self._instances.values())

    def subject_for(self, voice: str | None) -> str | None:
        """A worker's own subject when one should speak `voice`, else None (the queue)."""
        return choose(
            self._instances.values(),
            voice,
            now=self._clock(),
            # Two missed rounds: a worker gone since is not asked (a late answer is no loss).
            stale_after_s=3 * self._refresh_s,
        )

    def failed(self, subject: str) -> None:
        """A worker asked directly did not answer (gone, or full): not asked again until
        its next stats say otherwise."""
        self._instances.pop(subject, None)

    async def refresh(self) -> None:
        """Ask every TTS worker for its stats; the table becomes those that answered."""
        answers = await gather(self._nc, ServiceVerb.STATS, TTS_SERVICE)
        now = self._clock()
        found = {}
        for answer in answers:
            instance = parse_stats(answer, self._request_subject, now)
            if instance is not None:
                found[instance.subject] = instance
        self._instances = found

    def start(self) -> None:
        if self._refresh_s > 0:
            self._refreshes.start()

    async def aclose(self) -> None:
        await self._refreshes.aclose()
