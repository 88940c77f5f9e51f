"""The events service's settings: one object, built at start-up from `ARC_*` variables."""

from __future__ import annotations

from enum import StrEnum

from arc_common.settings import PostgresSettings, ServiceSettings
from pydantic import BaseModel, Field


class Role(StrEnum):
    RELAY = "relay"
    ANALYTICS = "analytics"
    AUDIT = "audit"


class PulsarSettings(BaseModel):
    service_url: str = "pulsar://127.0.0.1:6650"
    admin_url: str = "http://127.0.0.1:8080"
    # Lookups and producer/consumer creation give up after this; the relay then retries.
    operation_timeout_s: int = Field(default=10, ge=1, le=300)


class EventsOptions(BaseModel):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8084, ge=0, le=65535)
    # What this process runs; `python -m arc_events relay|analytics|audit` narrows it to one.
    roles: list[Role] = Field(default_factory=lambda: list(Role))
    # Appended to every contract topic (and so to its dead-letter topic): lets several
    # isolated meshes, or test runs, share one broker. Empty in production.
    topic_suffix: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]*$", max_length=64)
    # Relays this process runs, each with its own bucket leases (a fair share of the outbox,
    # disjoint from the others') and its own broker connection. A relay waits for the broker's
    # acknowledgements of one batch before the next; two overlap those waits (1.5-1.9x the
    # steady events/s of one on the Intel 2-core box of 2026-12-03; 0.8-1.5x on the AMD one of
    # 2026-12-06, where the broker shares the cores: `make bench`, docs/events.md).
    relay_workers: int = Field(default=2, ge=1, le=8)
    # Rows read, published and marked sent per round trip. 5000 beat 2000 in each of five
    # `make bench` runs with two key-batched relays (1.05-1.98x, docs/events.md).
    relay_batch_size: int = Field(default=5000, ge=1, le=20_000)
    # Key-based producer batching, a pass's rows grouped by session: one broker entry per
    # session and pass instead of one per event (docs/events.md has the measurements).
    relay_producer_batching: bool = True
    # LISTEN/NOTIFY wakes the relay at once; this poll catches anything a lost notification
    # (a dropped connection) would otherwise leave waiting.
    relay_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    # A publish the broker has not acknowledged by then counts as failed: the rows stay
    # unsent and the relay reconnects and retries them.
    relay_send_timeout_s: float = Field(default=10.0, gt=0, le=600)
    relay_retry_max_s: float = Field(default=2.0, gt=0, le=60)
    # How often a relay re-counts its peers and takes or gives back bucket leases.
    relay_rebalance_interval_s: float = Field(default=2.0, gt=0, le=300)
    # Sent rows are deleted after this long (0 keeps them forever).
    outbox_sent_retention_h: float = Field(default=24.0, ge=0)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Pulsar redelivers a negatively acknowledged batch (a database failure) after this.
    consumer_redelivery_delay_ms: int = Field(default=1000, ge=100, le=600_000)
    # A consumer whose broker connection has been gone this long starts a fresh client.
    consumer_reconnect_after_s: float = Field(default=5.0, gt=0, le=600)
    # How often backlog, oldest-unsent age and consumer lag are refreshed for /metrics.
    stats_interval_s: float = Field(default=5.0, gt=0, le=300)

    @property
    def relay_max_pending(self) -> int:
        """Sends a relay's producer may hold unacknowledged: a whole batch twice over, so
        one pass never waits for room behind the last one's acknowledgements."""
        return max(self.relay_batch_size * 2, 1000)


class EventsSettings(ServiceSettings):
    service_name: str = "arc-events"
    postgres: PostgresSettings = PostgresSettings()
    pulsar: PulsarSettings = PulsarSettings()
    events: EventsOptions = EventsOptions()
