"""Publishing outbox rows to Pulsar and waiting for the broker's acknowledgements.

pulsar-client's producer is callback based: `send_async` queues a message and its C++ I/O
thread calls back once the broker has stored it. A batch is bridged to asyncio with one
future that the last callback resolves; the queueing itself runs on a thread of the
publisher's. Messages are keyed by session, so Key_Shared consumers get each session's events
on one consumer, in order; a session with several events in a pass has them sent as one
key-based batch (`sending_order`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pulsar

from arc_events.outbox_store import OutboxRow
from arc_events.pulsar_client import new_client

log = logging.getLogger(__name__)

_BATCH_BYTES = 1024 * 1024  # under the broker's 5 MB message limit, with room for a batch's framing
_BATCH_DELAY_MS = 2
_BATCH_MIN_ROWS = 4


class _BatchAcks:
    """Collects the broker's answers for one batch; callbacks run on the client's thread."""

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.results: list[pulsar.Result | None] = [None] * size
        self.done: asyncio.Future[None] = loop.create_future()
        self._loop = loop
        self._remaining = size
        self._lock = threading.Lock()

    def callback(self, index: int, result: pulsar.Result, _msg_id: object) -> None:
        # An exception escaping a pulsar callback terminates the process: keep this trivial.
        self.results[index] = result
        with self._lock:
            self._remaining -= 1
            finished = self._remaining == 0
        if finished:
            self._loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class PulsarPublisher:
    """One client and one producer per topic. After a failure the caller `reset()`s it: a
    fresh client reconnects at once instead of waiting out the old one's backoff."""

    def __init__(
        self,
        service_url: str,
        *,
        operation_timeout_s: int,
        send_timeout_s: float,
        max_pending: int,
        batching: bool,
        topic_suffix: str = "",
    ) -> None:
        self._service_url = service_url
        self._operation_timeout_s = operation_timeout_s
        self._send_timeout_ms = max(int(send_timeout_s * 1000), 1)
        self._max_pending = max_pending
        self._topic_suffix = topic_suffix
        self._batching = batching
        self._client: pulsar.Client | None = None
        self._producers: dict[tuple[str, bool], pulsar.Producer] = {}
        # One thread queues messages, so a pass enters its producers in `sending_order`.
        self._thread: ThreadPoolExecutor | None = None

    async def _producer(self, topic: str, *, batched: bool) -> pulsar.Producer:
        producer = self._producers.get((topic, batched))
        if producer is not None:
            return producer
        if self._client is None:
            self._client = new_client(
                self._service_url, operation_timeout_s=self._operation_timeout_s
            )
        client = self._client
        producer = await asyncio.get_running_loop().run_in_executor(
            None,
            partial(
                client.create_producer,
                topic + self._topic_suffix,
                send_timeout_millis=self._send_timeout_ms,
                max_pending_messages=self._max_pending,
                block_if_queue_full=False,
                **(self._batching_options() if batched else {"batching_enabled": False}),
            ),
        )
        self._producers[topic, batched] = producer
        return producer

    def _batching_options(self) -> dict[str, object]:
        # Key-based: the only batching Key_Shared consumers allow (a batch goes to the
        # consumer of its key). A relay pass is queued whole and then waited for, so the
        # container may hold all of it; the short delay only bounds a pass's last batches.
        return {
            "batching_enabled": True,
            "batching_type": pulsar.BatchingType.KeyBased,
            "batching_max_messages": self._max_pending,
            "batching_max_allowed_size_in_bytes": _BATCH_BYTES,
            "batching_max_publish_delay_ms": _BATCH_DELAY_MS,
        }

    async def publish(self, rows: Sequence[OutboxRow]) -> list[str | None]:
        """Publishes `rows`, each session's in order; for each, None once the broker
        acknowledged it, or why it failed. Raises only when no producer could be made (the
        broker is unreachable)."""
        if not rows:
            return []
        order = sending_order(rows, batching=self._batching)
        producers = {
            (topic, batched): await self._producer(topic, batched=batched)
            for topic, batched in {(rows[index].topic, batched) for index, batched in order}
        }
        plan = [(index, producers[rows[index].topic, batched]) for index, batched in order]
        acks = _BatchAcks(len(rows), asyncio.get_running_loop())
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-publish")
        # send_async does the batching work inline (about 0.1-0.2 ms a message on a busy
        # 2-core box), so the queueing runs on the publisher's thread, not the event loop.
        await asyncio.get_running_loop().run_in_executor(self._thread, _enqueue, plan, rows, acks)
        await acks.done
        return [None if r == pulsar.Result.Ok else str(r) for r in acks.results]

    async def reset(self) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the client; the publisher can still be used afterwards (a new client)."""
        client, self._client = self._client, None
        self._producers.clear()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=False)
        if client is not None:
            # Closing fails whatever is still pending, which the relay then retries.
            await asyncio.get_running_loop().run_in_executor(None, _close_quietly, client)


def sending_order(rows: Sequence[OutboxRow], *, batching: bool) -> list[tuple[int, bool]]:
    """(row index, through the batching producer) for each row, in the order to queue them.
    With batching, a session with `_BATCH_MIN_ROWS` or more rows in the pass goes out batched,
    its rows side by side in their order (a stable sort), so that the broker stores one entry
    for them; the others go unbatched, because batches of one or two cost the broker more than
    plain messages (docs/events.md has the measurements). A session's rows in a pass all take
    one producer and so stay in order; a pass is acknowledged whole before the next is queued,
    so passes stay in order too."""
    counts = Counter((row.topic, row.key) for row in rows) if batching else Counter()
    plain: list[tuple[int, bool]] = []
    grouped: list[tuple[str, str, int]] = []
    for index, row in enumerate(rows):
        if counts[row.topic, row.key] >= _BATCH_MIN_ROWS:
            grouped.append((row.topic, row.key, index))
        else:
            plain.append((index, False))
    grouped.sort(key=lambda entry: entry[:2])
    return plain + [(index, True) for _topic, _key, index in grouped]


def _enqueue(
    plan: Sequence[tuple[int, pulsar.Producer]], rows: Sequence[OutboxRow], acks: _BatchAcks
) -> None:
    for index, producer in plan:
        row = rows[index]
        try:
            _send(producer, row, partial(acks.callback, index))
        except pulsar.PulsarException as error:  # e.g. a producer closed under us
            log.warning("relay: could not queue %s: %s", row.event_id, error)
            acks.callback(index, pulsar.Result.UnknownError, None)


def _send(producer: pulsar.Producer, row: OutboxRow, callback: Callable[..., None]) -> None:
    producer.send_async(
        row.payload,
        callback,
        properties={
            "event_id": str(row.event_id),
            "type": row.type,
            "v": str(row.schema_version),
        },
        partition_key=row.key,
        event_timestamp=int(row.occurred_at.timestamp() * 1000),
    )


def _close_quietly(client: pulsar.Client) -> None:
    try:
        client.close()
    except pulsar.PulsarException as error:  # the broker may be gone; the socket still closes
        log.info("pulsar client closed with %s", error)
