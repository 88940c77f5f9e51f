"""End of turn: settings to LiveKit's turn handling, and the transcript rule."""

from __future__ import annotations

import asyncio

import pytest
from arc_voice.settings import VoiceOptions
from arc_voice.turn_detection import (
    UNLIKELY_THRESHOLD,
    WORDS_WAIT_S,
    TranscriptAwareStream,
    TranscriptAwareTurnDetector,
    UnsureWait,
    Verdict,
    answers_at_once,
    ask_model_after_silence,
    transcript_asks,
    transcript_closed,
    transcript_open,
    transcript_unfinished,
    turn_detection_options,
    turn_unfinished,
    unlikely_threshold,
    unsure_wait,
    vad_min_silence_s,
    verdict,
)
from livekit.agents.voice import audio_recognition
from livekit.agents.voice.turn import TurnDetectionEvent, _StreamingTurnDetector

pytestmark = pytest.mark.unit


def test_vad_is_the_plain_timer() -> None:
    options = VoiceOptions(
        turn_detection="vad", endpointing_min_delay_s=0.1, endpointing_max_delay_s=0.9
    )
    detection, endpointing = turn_detection_options(options)
    assert detection == "vad"
    assert endpointing == {"min_delay": 0.1, "max_delay": 0.9}


def test_model_is_a_streaming_detector_with_the_measured_threshold() -> None:
    detection, endpointing = turn_detection_options(VoiceOptions(turn_detection="model"))
    assert isinstance(detection, TranscriptAwareTurnDetector)
    # The framework takes the audio path (and the bounded wait) only for this protocol.
    assert isinstance(detection, _StreamingTurnDetector)
    assert detection.unlikely_threshold == UNLIKELY_THRESHOLD
    assert detection.model == "turn-detector-v1-mini+transcript-rule"
    defaults = VoiceOptions()
    assert endpointing == {
        "min_delay": defaults.endpointing_min_delay_s,
        "max_delay": defaults.endpointing_max_delay_s,
    }


def test_threshold_and_delays_come_from_the_settings() -> None:
    options = VoiceOptions(
        turn_unlikely_threshold=0.4, endpointing_min_delay_s=0.05, endpointing_max_delay_s=1.5
    )
    detection, endpointing = turn_detection_options(options)
    assert isinstance(detection, TranscriptAwareTurnDetector)
    assert detection.unlikely_threshold == 0.4
    assert endpointing == {"min_delay": 0.05, "max_delay": 1.5}


def test_the_default_threshold_follows_where_the_model_is_asked() -> None:
    assert unlikely_threshold(VoiceOptions(turn_model_after_silence_s=0.1)) == 0.25
    assert unlikely_threshold(VoiceOptions(turn_model_after_silence_s=0.2)) == 0.36
    assert unlikely_threshold(VoiceOptions(turn_unlikely_threshold=0.5)) == 0.5


def test_each_conversation_gets_its_own_detector() -> None:
    first, _ = turn_detection_options(VoiceOptions())
    second, _ = turn_detection_options(VoiceOptions())
    assert first is not second


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"turn_detection": "model", "vad_min_silence_s": 0.1}, 0.25),
        ({"turn_detection": "model", "turn_model_after_silence_s": 0.1}, 0.15),
        ({"turn_detection": "model", "vad_min_silence_s": 0.5}, 0.5),
        ({"turn_detection": "vad", "vad_min_silence_s": 0.1}, 0.1),
    ],
)
def test_vad_silence_leaves_room_for_the_model(options: dict[str, object], expected: float) -> None:
    assert vad_min_silence_s(VoiceOptions.model_validate(options)) == pytest.approx(expected)


def test_livekit_asks_the_model_where_the_settings_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # prewarm sets LiveKit's module constant; monkeypatch puts it back for the other tests.
    monkeypatch.setattr(audio_recognition, "MIN_SILENCE_DURATION_MS", 200)
    options = VoiceOptions(turn_model_after_silence_s=0.1)
    ask_model_after_silence(options.turn_model_after_silence_s)
    asked_ms = audio_recognition.MIN_SILENCE_DURATION_MS  # type: ignore[attr-defined]
    assert asked_ms == 100
    # What AudioRecognition demands of the VAD (it refuses a session otherwise), and no more:
    # a longer VAD silence would delay every end of turn.
    assert vad_min_silence_s(options) == pytest.approx((asked_ms + 50) / 1000)


def test_a_livekit_without_the_constant_fails_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(audio_recognition, "MIN_SILENCE_DURATION_MS")
    with pytest.raises(RuntimeError, match="livekit-agents changed"):
        ask_model_after_silence(0.1)


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for",
        "I'd like to book a table for.",
        "Can I get a",
        "Send a message to my",
        "I want to go to the",
        "I think that we should and",
        "The meeting is with",
        "I need a flight from London to",
        "My name is",
        "My order number is...",
        "So I was thinking, um",
        "I'd like to, uh.",
        "Book me a flight to… ",
        "I'm looking for",
        "Well,",
        "And then I",
        "It\u2019s",
        "What's the best way to get to the",
        "Could you tell me?",
        "Can you give us",
        "Please show me.",
        "Please repeat after me.",
        "I'd like to know.",
        "I would like to know",
        "I wanted to ask.",
        "The address is",
        "What I want is",
        "Hi, this is",
        "The problem was",
    ],
)
def test_unfinished_transcripts(text: str) -> None:
    assert transcript_unfinished(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "What's the weather like in Paris tomorrow?",
        "Please remind me to call my mother at 6.",
        "Set a timer for ten minutes.",
        "Yes, please.",
        "Thanks, that's all I needed.",
        "Who is this package for?",
        "Where are you calling from?",
        "What is it about?",
        "Can you check me in?",
        "Please turn the heating on.",
        "I think so.",
        "Yes, I can.",
        "I'd like to book a table",
        "Tell me.",
        "Can you help me?",
        "Could you tell me more?",
        "Please repeat after me: the weather is nice.",
        "I'd like to know the date today.",
        "I'd like to know what time it is.",
        "I don't know.",
        # A copula after a personal pronoun closes its clause.
        "Do you know what time it is?",
        "I know where they are.",
        "Yes, it is.",
        "That's who you were",
    ],
)
def test_finished_transcripts(text: str) -> None:
    assert not transcript_unfinished(text)


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("What time is it?", True),
        ("  Can you check me in?  ", True),
        # Whisper's "?" on a cut-off question is taken at its word: the turn bench counts
        # these among the cut-offs the rule costs.
        ("Could you check the weather?", True),
        ("Is there a pharmacy near?", False),  # ends on a word no sentence ends on
        ("Could you tell me?", False),  # the request has not said what yet
        ("What's the best way to get to the?", False),
        ("Set a timer for ten minutes.", False),
        ("What time is it", False),
        ("Do you know what time it is?", True),
        ("", False),
    ],
)
def test_finished_questions(text: str, asks: bool) -> None:
    assert transcript_asks(text) is asks


@pytest.mark.parametrize(
    ("text", "open_"),
    [
        # What Whisper wrote for "I would like to know the, um" and "Tell me the time and",
        # decoded 100-150 ms into the pause: words a sentence can end on, left open.
        ("I would like to know that", True),
        ("Tell me the time in", True),
        ("I would like to know that.", False),
        # A short reply on its own: Whisper leaves those open whether or not the voice goes on.
        ("Okay", False),
        ("ok", False),
        ("No", False),
        ("Hello there", False),
        ("Thank you", False),
        ("Okay so", True),
        ("No I", True),
        ("Let me", True),
        ("you", True),
        ("What time is it?", False),
        ("Yes!", False),
        ('He said "go."', False),
        ("It\u2019s fine.\u2019", False),
        ("(Okay.)", False),
        ("", False),
        ("   ", False),
    ],
)
def test_a_sentence_the_stt_left_open(text: str, open_: bool) -> None:
    assert transcript_open(text) is open_


@pytest.mark.parametrize(
    ("text", "closed"),
    [
        ("Okay.", True),
        ("What time is it?", True),
        ("Yes!  ", True),
        ('He said "go."', True),
        ("(Okay.)", True),
        ("Okay", False),
        ("I would like to know that", False),
        ("Wait...", True),  # closed; the words rule holds a trailing-off "..."
        ("", False),
    ],
)
def test_a_sentence_the_stt_closed(text: str, closed: bool) -> None:
    assert transcript_closed(text) is closed


def test_the_turn_waits_on_open_sentences_and_on_unfinished_words() -> None:
    assert turn_unfinished("I would like to know that")  # open, its words could end it
    assert turn_unfinished("I want to go to the.")  # closed, its words cannot end it
    assert not turn_unfinished("I would like to know that.")
    assert not turn_unfinished("")


class _Decode:
    def __init__(self, text: str) -> None:
        self.text = text


class _AudioModel:
    """LiveKit's v1-mini stream, as far as the transcript rule asks it (the real model is
    asked in tests/integration/voice/test_end_of_turn.py): `predict` answers `probability`."""

    def __init__(self, probability: float | None = None) -> None:
        self.probability = probability

    async def supports_language(self, language: object) -> bool:
        return True

    def predict(self) -> asyncio.Future[TurnDetectionEvent]:
        fut: asyncio.Future[TurnDetectionEvent] = asyncio.get_running_loop().create_future()
        if self.probability is not None:
            fut.set_result(
                TurnDetectionEvent(
                    type="eot_prediction",
                    end_of_turn_probability=self.probability,
                    last_speaking_time=0.0,
                )
            )
        return fut

    def cancel_inference(self, *, timed_out: bool = False) -> None:
        pass

    def flush(self, reason: str | None = None) -> None:
        pass


def _stream_with(
    pending: asyncio.Future[_Decode] | None,
    probability: float | None = None,
    unsure: UnsureWait | None = None,
) -> TranscriptAwareStream:
    detector = TranscriptAwareTurnDetector(unsure=unsure)
    detector.pending_words = lambda: pending
    return TranscriptAwareStream(detector, _AudioModel(probability))  # type: ignore[arg-type]


async def test_words_still_being_decoded_that_cannot_end_a_sentence_make_it_wait() -> None:
    decode: asyncio.Future[_Decode] = asyncio.get_running_loop().create_future()
    stream = _stream_with(decode)
    asked = asyncio.create_task(stream.unlikely_threshold(None))
    await asyncio.sleep(0.05)
    assert not asked.done()  # it waits for the words of the speech just ended
    decode.set_result(_Decode("I would like to know the, um"))
    threshold = await asyncio.wait_for(asked, 0.1)
    assert threshold is not None and threshold > 1.0  # out of reach: the turn waits


async def test_finished_words_are_judged_once_the_framework_holds_them() -> None:
    decode: asyncio.Future[_Decode] = asyncio.get_running_loop().create_future()
    stream = _stream_with(decode)
    asked = asyncio.create_task(stream.unlikely_threshold(None))
    decode.set_result(_Decode("What time is it?"))
    await asyncio.sleep(0.05)
    # Finished words are not ruled on before they are delivered: the framework commits a turn
    # with the transcript it holds.
    assert not asked.done()
    stream.add_transcript("What time is it?")
    assert await asyncio.wait_for(asked, 0.1) == 0.0


async def test_words_the_person_went_on_from_are_not_judged() -> None:
    decode: asyncio.Future[_Decode] = asyncio.get_running_loop().create_future()
    stream = _stream_with(decode)
    stream.add_transcript("Thank you.")
    asked = asyncio.create_task(stream.unlikely_threshold(None))
    await asyncio.sleep(0)
    decode.cancel()  # the person spoke again: that decode is no one's final
    # judged at once on what was delivered
    assert await asyncio.wait_for(asked, 0.1) == UNLIKELY_THRESHOLD


async def test_late_words_are_waited_for_only_so_long() -> None:
    never: asyncio.Future[_Decode] = asyncio.get_running_loop().create_future()
    stream = _stream_with(never)
    stream.add_transcript("Thank you.")
    started = asyncio.get_running_loop().time()
    threshold = await stream.unlikely_threshold(None)
    waited = asyncio.get_running_loop().time() - started
    assert threshold == UNLIKELY_THRESHOLD
    assert WORDS_WAIT_S - 0.01 <= waited < WORDS_WAIT_S + 0.2


async def test_open_words_still_being_decoded_make_it_wait() -> None:
    decode: asyncio.Future[_Decode] = asyncio.get_running_loop().create_future()
    stream = _stream_with(decode)
    asked = asyncio.create_task(stream.unlikely_threshold(None))
    decode.set_result(_Decode("I would like to know that"))
    threshold = await asyncio.wait_for(asked, 0.1)  # judged at once, not delivered first
    assert threshold is not None and threshold > 1.0


async def test_without_words_in_flight_the_transcript_is_judged_at_once() -> None:
    stream = _stream_with(None)
    stream.add_transcript("Set a timer for ten minutes.")
    assert await asyncio.wait_for(stream.unlikely_threshold(None), 0.05) == UNLIKELY_THRESHOLD


# The model asked 0.2 s after the last speech; unsure between 0.2 and the threshold (0.36).
_UNSURE = UnsureWait(threshold=0.2, delay_s=0.55, asked_after_s=0.2)


def test_the_unsure_wait_comes_from_the_settings() -> None:
    assert unsure_wait(VoiceOptions()) == UnsureWait(0.2, 0.55, 0.2)
    assert unsure_wait(VoiceOptions(turn_model_after_silence_s=0.1)) == UnsureWait(0.15, 0.55, 0.1)
    assert unsure_wait(VoiceOptions(endpointing_unsure_delay_s=0)) is None
    detection, _ = turn_detection_options(
        VoiceOptions(turn_unsure_threshold=0.1, endpointing_unsure_delay_s=0.4)
    )
    assert isinstance(detection, TranscriptAwareTurnDetector)
    assert detection.unsure == UnsureWait(0.1, 0.4, 0.2)


async def _judged(stream: TranscriptAwareStream) -> tuple[float | None, float]:
    """The threshold the framework gets, and how long after the model was asked."""
    loop = asyncio.get_running_loop()
    asked = loop.time()
    stream.predict()
    await asyncio.sleep(0)
    threshold = await asyncio.wait_for(stream.unlikely_threshold(None), 2.0)
    return threshold, loop.time() - asked


async def test_words_that_can_end_scored_a_little_under_wait_the_shorter_delay() -> None:
    stream = _stream_with(None, probability=0.3, unsure=_UNSURE)
    stream.add_transcript("Hello there.")
    threshold, waited = await _judged(stream)
    # Under any probability after the wait: the framework commits, its min delay long past.
    assert threshold == 0.0
    # 0.55 s after the last speech, which was 0.2 s before the model was asked.
    assert 0.34 <= waited < 0.5


@pytest.mark.parametrize(
    ("probability", "text", "expected"),
    [
        (0.1, "Hello there.", UNLIKELY_THRESHOLD),  # far under: the max delay, as before
        (0.5, "Hello there.", UNLIKELY_THRESHOLD),  # over: done at once, as before
        (0.3, "I would like to know that", 1.0),  # left open by Whisper: the max delay
        (0.3, "I want to go to the.", 1.0),  # cannot end a sentence: the max delay
        (0.3, "What time is it?", 0.0),  # a finished question: at once
        (None, "Hello there.", UNLIKELY_THRESHOLD),  # no score: the framework decides
    ],
)
async def test_other_calls_are_answered_at_once(
    probability: float | None, text: str, expected: float
) -> None:
    stream = _stream_with(None, probability=probability, unsure=_UNSURE)
    stream.add_transcript(text)
    threshold, waited = await _judged(stream)
    assert threshold is not None
    assert threshold == expected if expected < 1.0 else threshold > 1.0
    assert waited < 0.1


@pytest.mark.parametrize(
    ("words", "probability", "unsure", "expected"),
    [
        ("I want to go to the.", 0.9, _UNSURE, Verdict.WAIT_MAX),
        ("I would like to know that", 0.9, _UNSURE, Verdict.WAIT_MAX),
        ("What time is it?", 0.0, _UNSURE, Verdict.DONE),
        ("Hello there.", 0.3, _UNSURE, Verdict.SHORTER),
        ("Hello there.", 0.3, None, Verdict.BY_SCORE),
        ("Hello there.", 0.9, _UNSURE, Verdict.BY_SCORE),
        ("Hello there.", 0.1, _UNSURE, Verdict.BY_SCORE),
        ("Hello there.", None, _UNSURE, Verdict.BY_SCORE),
        # A short reply on its own is not open without its full stop.
        ("Hello there", 0.3, _UNSURE, Verdict.SHORTER),
        ("okay", 0.9, _UNSURE, Verdict.BY_SCORE),
        ("", 0.3, _UNSURE, Verdict.SHORTER),  # no words yet: the model's score decides
    ],
)
def test_verdict(
    words: str, probability: float | None, unsure: UnsureWait | None, expected: Verdict
) -> None:
    assert verdict(words, probability, UNLIKELY_THRESHOLD, unsure) is expected


@pytest.mark.parametrize(
    ("words", "probability", "expected"),
    [
        ("What time is it?", 0.0, True),  # the question rule, whatever the score
        ("Hello there.", 0.9, True),  # left to the score, over the threshold
        ("Hello there.", UNLIKELY_THRESHOLD, True),
        ("Hello there.", 0.1, False),  # under the unsure bar: the max delay
        ("Hello there.", 0.3, False),  # unsure: the shorter wait
        ("I want to go to the", 0.9, False),  # words that cannot end a sentence
    ],
)
def test_answered_at_once(words: str, probability: float, expected: bool) -> None:
    assert answers_at_once(words, probability, UNLIKELY_THRESHOLD, _UNSURE) is expected


async def test_without_the_setting_an_unsure_score_waits_the_max_delay() -> None:
    stream = _stream_with(None, probability=0.3, unsure=None)
    stream.add_transcript("Hello there.")
    threshold, waited = await _judged(stream)
    assert threshold == UNLIKELY_THRESHOLD  # 0.3 under it: the framework waits max_delay
    assert waited < 0.1


async def test_a_person_who_goes_on_cancels_the_shorter_wait() -> None:
    stream = _stream_with(None, probability=0.3, unsure=_UNSURE)
    stream.add_transcript("Hello there.")
    stream.predict()
    check = asyncio.create_task(stream.unlikely_threshold(None))
    await asyncio.sleep(0.05)
    assert not check.done()
    # What the framework does on the VAD's start of speech: cancel the end-of-turn check.
    check.cancel()
    with pytest.raises(asyncio.CancelledError):
        await check
    stream.cancel_inference()
    # The next check, before the model is asked again, has no score to be unsure of.
    assert await asyncio.wait_for(stream.unlikely_threshold(None), 0.1) == UNLIKELY_THRESHOLD


async def test_a_committed_turn_forgets_its_score() -> None:
    stream = _stream_with(None, probability=0.3, unsure=_UNSURE)
    stream.add_transcript("Hello there.")
    stream.predict()
    stream.flush()
    stream.add_transcript("Thank you.")
    assert await asyncio.wait_for(stream.unlikely_threshold(None), 0.1) == UNLIKELY_THRESHOLD
