"""The voice worker's turn trace, from the marks a conversation makes."""

from __future__ import annotations

import time

import pytest
from arc_voice.turn_trace import TurnTrace
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from tests.fixtures.jaeger import CapturedSpans

pytestmark = pytest.mark.unit


def _start(span: ReadableSpan) -> int:
    assert span.start_time is not None
    return span.start_time


def _end(span: ReadableSpan) -> int:
    assert span.end_time is not None
    return span.end_time


def _trace() -> TurnTrace:
    return TurnTrace(session_id="s1", room="r1", identity="dora")


def test_a_turn_is_a_root_with_sequential_stages_and_its_requests_under_it(
    captured_spans: CapturedSpans,
) -> None:
    turn = _trace()
    now = time.monotonic()
    eos, final, confirmed, audio, frame = now - 1.0, now - 0.8, now - 0.5, now - 0.6, now - 0.3
    turn.speech_ended(eos)
    turn.transcript_final(final)
    parent = turn.brain_context()
    assert parent is not None
    with trace.get_tracer("test").start_as_current_span("brain.request", context=parent):
        pass
    turn.answer_playing()
    turn.interrupted(now - 0.2)
    ctx = turn.finish(
        turn_id="t1",
        interrupted=True,
        confirmed_at=confirmed,
        audio_ready_at=audio,
        first_frame_at=frame,
    )

    assert ctx is not None
    [root] = captured_spans.named("voice.turn")
    assert root.parent is None
    assert [e.name for e in root.events] == ["interruption"]
    assert root.attributes is not None and root.attributes["arc.turn_id"] == "t1"
    children = {s.name: s for s in captured_spans.finished() if s.parent is not None}
    assert set(children) == {"brain.request", "voice.stt", "voice.end_of_turn", "voice.playout"}
    for child in children.values():
        assert child.parent is not None and child.parent.span_id == root.context.span_id
    stt, decided, playout = (
        children[n] for n in ("voice.stt", "voice.end_of_turn", "voice.playout")
    )

    def ms(span: ReadableSpan) -> float:
        return (_end(span) - _start(span)) / 1e6

    assert ms(stt) == pytest.approx(200, abs=2)
    assert ms(decided) == pytest.approx(300, abs=2)
    # Playout starts when both the audio and the decision are there: the later one.
    assert ms(playout) == pytest.approx(200, abs=2)
    assert _end(stt) <= _start(decided) and _end(decided) <= _start(playout)
    assert ms(root) >= ms(stt) + ms(decided) + ms(playout)
    assert root.start_time == pytest.approx(stt.start_time, abs=1_000)


def test_the_greeting_has_no_turn_and_a_brain_request_always_has_one(
    captured_spans: CapturedSpans,
) -> None:
    turn = _trace()
    assert turn.reply_context() is None  # the greeting: its TTS requests trace on their own
    assert turn.brain_context() is not None  # asked before the VAD's end of speech
    assert turn.reply_context() is not None
    turn.close("hang-up")

    [root] = captured_spans.named("voice.turn")
    assert [e.name for e in root.events] == ["closed"]


def test_a_transcript_final_before_the_end_of_speech_is_an_empty_stt_stage(
    captured_spans: CapturedSpans,
) -> None:
    turn = _trace()
    turn.transcript_final(time.monotonic() - 0.1)
    turn.brain_context()  # preemptive: on the final transcript
    eos = time.monotonic() + 0.1  # the VAD calls the end of speech after that
    turn.speech_ended(eos)
    turn.finish(
        turn_id="t1",
        interrupted=False,
        confirmed_at=eos + 0.4,
        audio_ready_at=None,
        first_frame_at=None,
    )

    [stt] = captured_spans.named("voice.stt")
    [decided] = captured_spans.named("voice.end_of_turn")
    [root] = captured_spans.named("voice.turn")
    assert stt.end_time == stt.start_time
    assert stt.attributes is not None and stt.attributes["arc.final_first"] is True
    assert decided.end_time is not None and decided.start_time is not None
    assert (decided.end_time - decided.start_time) / 1e6 == pytest.approx(400, abs=2)
    assert _start(root) <= _start(stt)


def test_untraced_marks_cost_nothing_and_open_nothing() -> None:
    turn = _trace()
    turn.speech_ended(time.monotonic())
    assert turn.brain_context() is None
    assert (
        turn.finish(
            turn_id="t",
            interrupted=False,
            confirmed_at=None,
            audio_ready_at=None,
            first_frame_at=None,
        )
        is None
    )


def test_speech_over_the_answer_starts_the_next_turn(captured_spans: CapturedSpans) -> None:
    turn = _trace()
    now = time.monotonic()
    turn.speech_ended(now - 2.0)
    turn.brain_context()
    turn.answer_playing()
    turn.speech_ended(now - 1.0)  # the person spoke over the answer
    turn.finish(
        turn_id="t1", interrupted=True, confirmed_at=None, audio_ready_at=None, first_frame_at=None
    )
    turn.brain_context()
    turn.finish(
        turn_id="t2", interrupted=False, confirmed_at=None, audio_ready_at=None, first_frame_at=None
    )

    first, second = captured_spans.named("voice.turn")
    assert first.context.trace_id != second.context.trace_id
    assert second.start_time is not None and first.start_time is not None
    assert (second.start_time - first.start_time) / 1e9 == pytest.approx(1.0, abs=0.01)
