"""The turn bench's reading of a pause at a comma: where the framework asks the model, where
the VAD ends speech and where the person goes on, and when the rule commits the turn. Hand-made
VAD events at 16 kHz, so the figures below are sample counts worked out by hand."""

from __future__ import annotations

from livekit.agents.vad import VADEvent, VADEventType

from tests.bench.turn import ClausePause, clause_pauses_in


def _event(kind: VADEventType, at: int, silence: float = 0.0, speech: float = 0.0) -> VADEvent:
    return VADEvent(
        type=kind,
        samples_index=at,
        timestamp=at / 16000,
        speech_duration=0.0,
        silence_duration=silence,
        raw_accumulated_silence=silence,
        raw_accumulated_speech=speech,
    )


START, WINDOW, END = (
    VADEventType.START_OF_SPEECH,
    VADEventType.INFERENCE_DONE,
    VADEventType.END_OF_SPEECH,
)
# Speech from 1000; a pause in which the model is asked after 100 ms (5000) or 200 ms (6600)
# and the VAD ends speech (7000); the person goes on (9000); the sentence's real end (16000)
# has nobody going on after it, so it is no clause pause.
EVENTS = [
    _event(START, 1000),
    _event(WINDOW, 3000, speech=0.1),
    _event(WINDOW, 5000, silence=0.1),
    _event(WINDOW, 6600, silence=0.2),
    _event(END, 7000, silence=0.25),
    _event(START, 9000),
    _event(WINDOW, 15000, silence=0.2),
    _event(END, 16000, silence=0.25),
]


def test_a_pause_is_found_where_the_model_is_first_asked_in_it() -> None:
    assert clause_pauses_in(EVENTS, 200) == [(6600, 7000, 9000)]
    assert clause_pauses_in(EVENTS, 100) == [(5000, 7000, 9000)]


def test_speech_within_the_silence_asks_again() -> None:
    # The person makes a sound after the 100 ms ask (5400): the framework asks again at the
    # next silent window, and that ask is the one the end of speech follows.
    events = [
        *EVENTS[:3],
        _event(WINDOW, 5400, speech=0.03),
        _event(WINDOW, 6200, silence=0.1),
        *EVENTS[4:],
    ]
    assert clause_pauses_in(events, 100)[0] == (6200, 7000, 9000)


def test_no_pause_without_the_person_going_on() -> None:
    assert clause_pauses_in(EVENTS[-2:], 200) == []


def _pause(said: str, score: float) -> ClausePause:
    # Asked at 1.0 s, 200 ms into the silence: the last speech at 0.8 s (12800).
    return ClausePause("", "", 200, 16000, 17000, 20000, said, score)


def test_a_question_is_taken_when_the_vad_ends_speech() -> None:
    # 0.8 s + 0.25 s of VAD silence = 16800 is before the VAD's end of speech.
    assert _pause("What's on my calendar?", 0.1).taken_at == 17000


def test_open_words_wait_the_longest() -> None:
    # 0.8 s + 0.8 s = 1.6 s.
    assert _pause("What's on my", 0.9).taken_at == 25600


def test_an_unsure_score_waits_the_shorter_wait() -> None:
    # Scored between the unsure bar (0.2) and the threshold (0.36): 0.8 s + 0.55 s = 1.35 s.
    assert _pause("Tell me the time.", 0.3).taken_at == 21600
