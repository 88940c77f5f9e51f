"""The sessions API's plain core: range parsing, session ids, recording paths, summary and
sentiment, the text export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arc_common.errors import BadRequest
from arc_voice.sessions import (
    ByteRange,
    Line,
    RangeNotSatisfiable,
    Recording,
    RecordingRefused,
    Sentiment,
    SessionRow,
    SessionView,
    _timed_lines,
    checked_session_id,
    parse_range,
    recording_path,
    render_text,
    sentiment,
    summarize,
    topics,
)

pytestmark = pytest.mark.unit

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("items=0-5", None),  # another unit: ignored, the whole file (RFC 9110)
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=10-19", ByteRange(10, 19)),
        ("bytes=990-", ByteRange(990, 999)),
        ("bytes=-10", ByteRange(990, 999)),
        ("bytes=-5000", ByteRange(0, 999)),  # more than the file: all of it
        ("bytes=500-5000", ByteRange(500, 999)),  # past the end: to the end
        ("BYTES = 0 - 0", ByteRange(0, 0)),
    ],
)
def test_ranges_served(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=1000-",  # starts at the end
        "bytes=2000-3000",
        "bytes=50-10",  # ends before it starts
        "bytes=-0",
        "bytes=0-1,5-9",  # several ranges
        "bytes=abc",
        "bytes=",
        "bytes=--5",
        "bytes=-",
    ],
)
def test_ranges_refused(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, 1000)
    assert info.value.size == 1000
    assert info.value.code.value == "bad_request"
    assert info.value.http_status == 416


def test_any_range_of_an_empty_file_is_refused() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-1", 0)


def test_range_length() -> None:
    assert ByteRange(10, 19).length == 10


@pytest.mark.parametrize("good", ["a", "0f3c9e2b" * 4, "user@x.y:1_2-3", "S" * 128])
def test_session_ids_accepted(good: str) -> None:
    assert checked_session_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "..", "../etc", "a/b", "a b", "-leading", ".hidden", "S" * 129, "é", "a%2Fb"]
)
def test_session_ids_refused(bad: str) -> None:
    with pytest.raises(BadRequest):
        checked_session_id(bad)


def test_recording_path_inside_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "2026" / "s 1.ogg"
    assert recording_path(target.as_uri(), tmp_path) == target.resolve()


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "{root}/../outside.ogg",
        "{root}/sub/../../outside.ogg",
        "{root}",  # the directory itself
        "http://example.com/{root}/a.ogg",
        "file://otherhost{path}/a.ogg",
        "s3://bucket/a.ogg",
        "relative/a.ogg",
    ],
)
def test_recording_path_refuses_what_lies_elsewhere(tmp_path: Path, uri: str) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    filled = uri.format(root=root.as_uri(), path=str(root))
    with pytest.raises(RecordingRefused) as info:
        recording_path(filled, root)
    assert str(tmp_path) not in info.value.message  # the refusal does not say where
    assert info.value.http_status == 403


def test_recording_path_refuses_a_link_out_of_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    outside = tmp_path / "secret.ogg"
    outside.write_bytes(b"x")
    (root / "link.ogg").symlink_to(outside)
    with pytest.raises(RecordingRefused):
        recording_path((root / "link.ogg").as_uri(), root)


# Each label's phrases, and the range its score falls in.
PHRASES = {
    "positive": (
        (0.05, 1),
        (
            "Thank you so much, that was really helpful!",
            "I love it, this is great",
            "Perfect, thanks a lot",
            "That's not bad at all",
            "I was confused at first but now it works great",
        ),
    ),
    "negative": (
        (-1, -0.05),
        (
            "This is terrible, you are useless and I am annoyed.",
            "I hate this, it is broken again",
            "That is not good at all",
            "I do not like this",
            "It was fine but now it is really slow and frustrating and wrong",
        ),
    ),
}


@pytest.mark.parametrize(
    ("label", "text"),
    [(label, text) for label, (_, texts) in PHRASES.items() for text in texts],
)
def test_positive_and_negative_phrases(label: str, text: str) -> None:
    found = sentiment([text])
    assert found.label == label, found
    low, high = PHRASES[label][0]
    assert low <= found.score <= high


@pytest.mark.parametrize(
    "text", ["What time is it in Paris?", "Set a timer for ten minutes", "Who wrote Hamlet?", ""]
)
def test_neutral_phrases(text: str) -> None:
    assert sentiment([text]) == Sentiment("neutral", 0.0)


def test_sentiment_weighs_the_whole_conversation() -> None:
    calm = sentiment(["What is the weather?", "Thanks"])
    angry = sentiment(["What is the weather?", "Wrong. Terrible answer. I am angry."])
    assert calm.label == "positive"
    assert angry.label == "negative"
    assert sentiment(["good"]).score < sentiment(["very good"]).score


def test_topics_are_the_repeated_content_words() -> None:
    said = ["what is the weather in Paris", "and the weather tomorrow in Paris", "book a train"]
    assert topics(said) == ["weather", "paris", "tomorrow"]


def _line(n: int, role: str, content: str, *, interrupted: bool = False) -> Line:
    at = START + timedelta(seconds=10 * n)
    return Line(f"t{n}", role, content, interrupted, at, 10_000 * n)


def test_summary_names_the_opening_topics_and_interruptions() -> None:
    lines = [
        _line(1, "user", "What is the weather in Paris today?"),
        _line(1, "assistant", "Sunny, 20 degrees.", interrupted=True),
        _line(2, "user", "And the weather in Paris tomorrow?"),
        _line(2, "assistant", "Rain."),
    ]
    text = summarize(lines)
    assert text.startswith("2 turns. The person opened with: “What is the weather in Paris")
    assert "Topics: weather, paris" in text
    assert "Last: “And the weather in Paris tomorrow?”" in text
    assert "interrupted the agent 1 time." in text


def test_summary_differs_with_the_conversation() -> None:
    one = summarize([_line(1, "user", "Tell me a joke about cats")])
    two = summarize([_line(1, "user", "Book a table for two tonight")])
    assert one != two
    assert "cats" in one
    assert "table" in two
    assert summarize([]) == "No words from the person in this session."


def test_text_export() -> None:
    row = SessionRow(
        "s1", "ann", "lobby", "ended", START, START + timedelta(minutes=2), "hangup", 1, True
    )
    view = SessionView(
        session=row,
        lines=[_line(1, "user", "Hello there"), _line(1, "assistant", "Hi Ann", interrupted=True)],
        timings=[],
        recordings=[],
        summary="1 turn.",
        sentiment=Sentiment("neutral", 0.0),
    )
    text = render_text(view)
    assert text.splitlines()[0] == "Session s1"
    assert "[00:10] user: Hello there\n[00:10] assistant: Hi Ann [interrupted]\n" in text
    assert "Sentiment: neutral (+0.000)" in text
    assert view.to_json()["duration_ms"] == 120_000


def _row(turn: str, role: str, at_s: float) -> dict[str, object]:
    return {
        "turn_id": turn,
        "role": role,
        "content": f"{role} of {turn}",
        "interrupted": False,
        "created_at": START + timedelta(seconds=at_s),
    }


def test_a_resumed_sessions_lines_are_placed_in_the_part_they_were_heard_in() -> None:
    """Two conversations of one session, each with its own file (recorded from 0 s and from
    100 s): a line with a mark is where its part's marks put it; one without (a typed message)
    is in the part being recorded when its row was stored, from that part's start."""
    parts = [
        Recording("file:///r/a.ogg", "audio/ogg", 30_000, START),
        Recording("file:///r/b.ogg", "audio/ogg", 20_000, START + timedelta(seconds=100)),
    ]
    marks = [
        {("t1", "user"): 4_000, ("t1", "assistant"): 6_500},
        {("t2", "user"): 3_000, ("t2", "assistant"): 5_200},
    ]
    rows = [
        _row("t1", "user", 7),
        _row("t1", "assistant", 7),
        _row("t2", "user", 106),
        _row("t2", "assistant", 106),
        _row("t3", "user", 112.5),  # typed, no mark
        _row("t3", "assistant", 113),
    ]
    lines = _timed_lines(rows, START - timedelta(seconds=2), parts, marks)
    assert [(line.part, line.offset_ms) for line in lines] == [
        (0, 4_000),
        (0, 6_500),
        (1, 3_000),
        (1, 5_200),
        (1, 12_500),
        (1, 13_000),
    ]
    # Before any part began (a row from before the first file opened): the first part, at 0.
    early = _timed_lines([_row("t0", "user", -1)], START - timedelta(seconds=2), parts, [{}, {}])
    assert [(line.part, line.offset_ms) for line in early] == [(0, 0)]
    # No recording at all: from the session's start, in no part.
    bare = _timed_lines(rows[:1], START - timedelta(seconds=2), [], [])
    assert [(line.part, line.offset_ms) for line in bare] == [(None, 9_000)]

    row = SessionRow("s1", "ann", "lobby", "ended", START, None, None, 3, True)
    view = SessionView(row, lines, [], parts, "3 turns.", Sentiment("neutral", 0.0))
    body = view.to_json()
    assert body["recording"] == {"mime_type": "audio/ogg", "duration_ms": 30_000}
    assert [(p["part"], p["duration_ms"]) for p in body["recordings"]] == [(0, 30_000), (1, 20_000)]
    assert "file://" not in str(body["recordings"])
    assert "[part 2 00:12] user: user of t3\n" in render_text(view)
    assert "[part 1 00:04] user: user of t1\n" in render_text(view)
