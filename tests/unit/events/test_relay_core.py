"""The relay's plain core: which acknowledged rows may be marked sent, how buckets are
shared, and the names it derives."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from arc_events.consumer import dead_letter_topic
from arc_events.leases import BUCKETS, fair_share, preferred_order
from arc_events.outbox_store import OutboxRow
from arc_events.publisher import sending_order
from arc_events.pulsar_admin import namespace_of, topic_path
from arc_events.relay import split_acknowledged

pytestmark = pytest.mark.unit


def _row(id_: int, session: str | None) -> OutboxRow:
    return OutboxRow(
        id=id_, event_id=uuid.uuid4(), topic="persistent://arc/events/conversation",
        type="conversation.turn", schema_version=1, session_id=session,
        occurred_at=datetime.now(UTC), payload=b"{}",
    )  # fmt: skip


def test_all_acknowledged_rows_are_marked_sent() -> None:
    rows = [_row(1, "a"), _row(2, "b"), _row(3, "a")]
    assert split_acknowledged(rows, [None, None, None]) == ([1, 2, 3], [])


def test_rows_after_a_sessions_failure_are_retried_even_if_acknowledged() -> None:
    rows = [_row(1, "a"), _row(2, "a"), _row(3, "b"), _row(4, "a"), _row(5, "b")]
    sent, retry = split_acknowledged(rows, [None, "Timeout", None, None, None])
    # Session a: 1 went out; 2 failed, so 4 must not overtake it. Session b is untouched.
    assert sent == [1, 3, 5]
    assert retry == [2, 4]


def test_events_without_a_session_are_keyed_by_their_own_id() -> None:
    lone, other = _row(1, None), _row(2, None)
    assert lone.key == str(lone.event_id) and lone.key != other.key
    assert split_acknowledged([lone, other], ["Timeout", None]) == ([2], [1])


def test_length_mismatch_is_a_bug_not_a_silent_truncation() -> None:
    with pytest.raises(ValueError):
        split_acknowledged([_row(1, "a")], [])


@pytest.mark.parametrize(("members", "share"), [(0, 64), (1, 64), (2, 32), (3, 22), (64, 1),
                                                 (100, 1)])  # fmt: skip
def test_fair_share_covers_every_bucket(members: int, share: int) -> None:
    assert fair_share(members) == share
    assert share * max(members, 1) >= BUCKETS


def test_each_member_starts_on_its_own_stripe() -> None:
    share = fair_share(2)
    first, second = preferred_order(0, share), preferred_order(1, share)
    assert sorted(first) == sorted(second) == list(range(BUCKETS))
    assert set(first[:share]).isdisjoint(second[:share])


def test_topic_names() -> None:
    topic = "persistent://arc/events/conversation"
    assert topic_path(topic) == "persistent/arc/events/conversation"
    assert namespace_of(topic) == "arc/events"
    assert dead_letter_topic(topic, "audit") == f"{topic}-audit-DLQ"
    assert dead_letter_topic(f"{topic}-partition-3", "audit") == f"{topic}-audit-DLQ"
    for bad in ("arc/events/conversation", "persistent://arc/conversation", "http://a/b/c"):
        with pytest.raises(ValueError):
            topic_path(bad)


def _on(topic: str, id_: int, session: str) -> OutboxRow:
    return replace(_row(id_, session), topic=f"persistent://arc/events/{topic}")


def test_a_session_with_several_rows_in_a_pass_goes_out_as_one_batch_in_order() -> None:
    a = [_row(i, "a") for i in (1, 3, 5, 8)]
    rows = [a[0], _row(2, "b"), a[1], _row(4, "c"), a[2], _row(6, "b"), _row(7, "d"), a[3]]
    order = sending_order(rows, batching=True)
    assert sorted(index for index, _ in order) == list(range(len(rows)))  # each row once
    sent = [(rows[index].id, batched) for index, batched in order]
    # b (two rows), c and d go plain in their order; a's four rows side by side, batched.
    assert sent == [(2, False), (4, False), (6, False), (7, False)] + [(row.id, True) for row in a]


def test_a_session_is_grouped_per_topic_and_keeps_its_order_in_each() -> None:
    rows = [_on("conversation", 1, "a"), _on("analytics", 2, "a")] * 4
    rows = [replace(row, id=i) for i, row in enumerate(rows)]
    sent = [(rows[index].topic.rsplit("/", 1)[1], rows[index].id, batched)
            for index, batched in sending_order(rows, batching=True)]  # fmt: skip
    assert sent == [("analytics", 1, True), ("analytics", 3, True), ("analytics", 5, True),
                    ("analytics", 7, True), ("conversation", 0, True), ("conversation", 2, True),
                    ("conversation", 4, True), ("conversation", 6, True)]  # fmt: skip


def test_without_batching_every_row_goes_plain_in_pass_order() -> None:
    rows = [_row(i, "a") for i in range(6)]
    assert sending_order(rows, batching=False) == [(i, False) for i in range(6)]
