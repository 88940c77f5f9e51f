"""Which TTS worker a unit goes to, from the workers' `$SRV.STATS` answers."""

from __future__ import annotations

from typing import Any

from arc_voice.tts_routes import TtsInstance, choose, parse_stats

EXTRA = "en_US-amy-medium"
DEFAULT = "en_US-joe-medium"


def _answer(subject: str, data: dict[str, Any] | None) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"name": "tts-request", "subject": subject}
    if data is not None:
        endpoint["data"] = data
    return {"name": "arc-tts", "id": "x", "endpoints": [endpoint]}


def _worker(name: str, *voices: str, free: int = 4, seen_at: float = 100.0) -> TtsInstance:
    return TtsInstance(f"tts.request.{name}", frozenset(voices), free, seen_at)


def _first(subjects: list[str]) -> str:
    return sorted(subjects)[0]


def test_a_workers_stats_give_its_subject_voices_and_free_streams() -> None:
    data = {
        "direct_subject": "tts.request.abc",
        "voices_resident": [DEFAULT, EXTRA],
        "free_streams": 3,
        "turns_in_progress": 1,
    }
    found = parse_stats(_answer("tts.request", data), "tts.request", 7.0)
    assert found == TtsInstance("tts.request.abc", frozenset({DEFAULT, EXTRA}), 3, 7.0)


def test_stats_of_another_prefix_or_without_a_direct_subject_are_not_a_route() -> None:
    data = {"direct_subject": "t1.tts.request.abc", "voices_resident": [], "free_streams": 3}
    assert parse_stats(_answer("t1.tts.request", data), "tts.request", 0.0) is None
    older = {"voices_resident": [DEFAULT], "free_streams": 3}  # a worker from before routing
    assert parse_stats(_answer("tts.request", older), "tts.request", 0.0) is None
    assert parse_stats(_answer("tts.request", None), "tts.request", 0.0) is None
    wrong = {"direct_subject": 5, "voices_resident": "joe", "free_streams": "many"}
    assert parse_stats(_answer("tts.request", wrong), "tts.request", 0.0) is None
    assert parse_stats({"endpoints": "nonsense"}, "tts.request", 0.0) is None


def test_a_voice_only_some_workers_hold_goes_to_one_of_them() -> None:
    workers = [_worker("a", DEFAULT), _worker("b", DEFAULT, EXTRA), _worker("c", DEFAULT)]
    assert choose(workers, EXTRA, now=101.0, stale_after_s=6.0) == "tts.request.b"


def test_among_holders_the_one_with_most_free_streams_is_asked() -> None:
    workers = [
        _worker("a", DEFAULT, EXTRA, free=1),
        _worker("b", DEFAULT, EXTRA, free=3),
        _worker("c", DEFAULT, EXTRA, free=3),
        _worker("d", DEFAULT),
    ]
    picked = choose(workers, EXTRA, now=101.0, stale_after_s=6.0, pick=_first)
    assert picked == "tts.request.b"
    seen = {choose(workers, EXTRA, now=101.0, stale_after_s=6.0) for _ in range(200)}
    assert seen == {"tts.request.b", "tts.request.c"}


def test_the_queue_group_serves_what_no_choice_improves() -> None:
    everyone = [_worker("a", DEFAULT, EXTRA), _worker("b", DEFAULT, EXTRA)]
    nobody = [_worker("a", DEFAULT), _worker("b", DEFAULT)]
    assert choose(everyone, EXTRA, now=101.0, stale_after_s=6.0) is None
    assert choose(nobody, EXTRA, now=101.0, stale_after_s=6.0) is None
    assert choose(everyone, None, now=101.0, stale_after_s=6.0) is None  # the default voice
    assert choose([], EXTRA, now=101.0, stale_after_s=6.0) is None


def test_a_full_holder_is_passed_over_for_the_queue() -> None:
    workers = [_worker("a", DEFAULT, EXTRA, free=0), _worker("b", DEFAULT)]
    assert choose(workers, EXTRA, now=101.0, stale_after_s=6.0) is None
    # Everyone holds it, but one is full: the one with room is asked, not the queue.
    workers = [_worker("a", DEFAULT, EXTRA, free=0), _worker("b", DEFAULT, EXTRA, free=2)]
    assert choose(workers, EXTRA, now=101.0, stale_after_s=6.0) == "tts.request.b"


def test_stale_stats_are_not_trusted() -> None:
    workers = [_worker("a", DEFAULT, EXTRA, seen_at=90.0), _worker("b", DEFAULT, seen_at=100.0)]
    # a was last heard 11 s ago: gone, as far as anyone knows; b alone does not hold it.
    assert choose(workers, EXTRA, now=101.0, stale_after_s=6.0) is None
    assert choose(workers, EXTRA, now=95.0, stale_after_s=6.0) == "tts.request.a"
