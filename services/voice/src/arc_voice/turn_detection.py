"""End of turn: what decides that the person has finished, and how long the agent may wait.

`turn_detection="vad"` is the silence timer: the turn ends `endpointing_min_delay_s` after the
VAD's end of speech. `turn_detection="model"` asks LiveKit's v1-mini audio end-of-turn model
(`livekit-local-inference`, run in this process) once the person has been silent for
`turn_model_after_silence_s` (LiveKit's own 200 ms unless set),
and rules on the transcript: words that cannot end a sentence (a filler, a conjunction, an
article, a preposition...) make the agent wait, a finished question ("...?") makes it answer
whatever the audio model says (it often hears a question's rising end as a voice going on).
The wait is never more than `endpointing_max_delay_s`: under the threshold the framework
waits `max_delay`, otherwise `min_delay`; words that can end a sentence scored only a little
under the threshold (at or over `turn_unsure_threshold`) wait `endpointing_unsure_delay_s`
instead. A wrong "not finished" costs at most that wait; a wrong "finished" is what the timer
would have done anyway. Numbers and the choice of
threshold: docs/voice.md, "End of turn", and `tests/bench/turn.py`.

The combination follows LiveKit's streaming turn-detector protocol: the audio model's
stream does the predicting; the transcript rule only raises the bar (`unlikely_threshold`)
for a turn whose words so far cannot end a sentence. The framework reads the threshold when
a final transcript is delivered (`user_input_transcribed` is emitted before that check) and
also at its own VAD's end of speech, which can come before the STT has delivered the words
of that speech: then the rule waits for them (`TranscriptAwareStream.words`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import re
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from arc_common.logging import said
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.inference.eot import TurnDetector
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.voice import audio_recognition
from livekit.agents.voice.events import UserInputTranscribedEvent
from livekit.agents.voice.turn import (
    EndpointingOptions,
    TurnDetectionEvent,
    TurnDetectionMode,
    _StreamingTurnDetectorStream,
)
from livekit.local_inference import init_eot

from arc_voice.settings import VoiceOptions

log = logging.getLogger(__name__)

# P(end of turn) under which the audio model's answer is "not finished", chosen from
# tests/bench/turn.py (docs/voice.md, "End of turn"): the highest threshold at which at most
# one complete sentence in five waits max_delay. With the question rule (a transcript Whisper
# ends with "?" is finished whatever the audio model says) that is LiveKit's own English
# value, 0.36: complete sentences wait as often as they did at 0.25 without the rule (18 %
# against 17 %, the same 0.35 s mean end of turn) and fewer turns are cut off (incomplete 33 %
# against 40 %, paused 9 % against 12 %), on the run of 2026-12-02 23:34 UTC.
UNLIKELY_THRESHOLD = 0.36
# The same rule's choice for the model asked after 100 ms of silence instead of 200, with the
# question rule (turn bench of 2026-12-07 00:44 UTC, as of 2026-12-02 23:34): less trailing
# silence, lower probabilities at true ends.
UNLIKELY_THRESHOLD_ASKED_EARLY = 0.25
# From these scores, under the threshold, words that can end a sentence wait the shorter
# delay (`UnsureWait`). 0.2 was chosen at 200 ms (docs/voice.md, "Unsure: a shorter wait");
# asked after 100 ms the turn bench of 2026-12-07 17:38 UTC put the same band at 0.15: complete
# sentences waiting the max delay 16 % -> 8 %, 5 more of 168 cut ones given the shorter wait,
# none more cut in a 400 ms pause (docs/voice.md, "Asking the model after 100 ms").
UNSURE_THRESHOLD = 0.2
UNSURE_THRESHOLD_ASKED_EARLY = 0.15
# Where LiveKit itself asks the end-of-turn model: after 200 ms of the VAD's silence
# (`audio_recognition.MIN_SILENCE_DURATION_MS`); the two thresholds above split at it.
LIVEKIT_ASKS_AFTER_S = 0.2
# Returned as the threshold when the words are a finished question: under any probability,
# so the framework answers after min_delay.
_ALWAYS_FINISHED = 0.0
# The VAD must not end speech before the model is asked; LiveKit's own check wants 50 ms more.
VAD_SILENCE_AFTER_ASK_S = 0.05
# Returned as the threshold when the words cannot end a sentence: over any probability, so
# the framework waits max_delay.
_NEVER_FINISHED = math.nextafter(1.0, 2.0)

# The longest the end-of-turn rule waits for the words of the speech that just fell silent (a
# Whisper decode started at the first silent VAD window) before it judges the transcript it
# has. Asked at 100 ms of silence, the words usually are not ready yet; judged without them,
# "I would like to know the, um" would be ruled on the words of an earlier pause, or none.
WORDS_WAIT_S = 0.3

FILLERS = frozenset({"um", "umm", "uh", "uhm", "uhh", "erm", "er", "ah"})
_COPULAS = frozenset({"is", "are", "was", "were"})
# Words a finished English sentence almost never ends on. Prepositions that double as verb
# particles ("check me in", "turn it on", "stop by", "what is it about") are left out, and
# so are modals ("yes, I can"). The copulas are in: "my name is", "the address is" are how
# people start giving details, and "yes, it is" only costs one max_delay wait.
CONTINUATIONS = frozenset(
    {
        # articles and possessive determiners
        "a", "an", "the", "my", "your", "our", "their",
        # conjunctions
        "and", "but", "or", "nor", "because", "unless", "whether", "although",
        # prepositions that are not particles
        "to", "for", "of", "with", "from", "at", "into", "onto", "near", "between",
        "towards", "toward", "via", "per", "than",
        # a subject, or a contraction, that still needs the rest of its clause
        "i", "i'm", "i'd", "i'll", "i've", "we're", "we'll", "we'd", "you're", "they're",
        "it's", "that's", "there's",
    }
) | _COPULAS  # fmt: skip
# Verbs that need a thing as well as a person: "Could you tell me" and "Can you give us" are
# the first half of a request, however Whisper punctuates them ("Could you tell me?" cut
# the room bench's "Could you tell me ... what time it is?" in two). An utterance of only the
# verb and the person ("Tell me.") is left to the audio model.
NEEDS_A_THING = frozenset(
    {"tell", "give", "show", "send", "bring", "find", "get", "book", "buy", "hand", "teach"}
)
_PERSON = frozenset({"me", "us"})
# A copula after a personal pronoun closes a clause that asks or tells what something is
# ("Do you know what time it is?", "I know where they are", "Yes, it is."), where after a
# noun it introduces the details ("My name is"). Not "this"/"that": "Hi, this is" opens an
# introduction.
_SUBJECTS = frozenset({"it", "he", "she", "they", "we", "you"})
# "Repeat after me" announces the words to repeat; Whisper drops the "um" that follows it.
# "I'd like to know" announces a question: the room benchmark's "I'd like to know ... the
# date today." was heard as "I'd like to know." and answered in its 400 ms pause in both
# runs of 2026-12-07 13:07 and 13:41 UTC.
_ANNOUNCES_WORDS = (
    ("repeat", "after", "me"),
    ("say", "after", "me"),
    ("like", "to", "know"),
    ("want", "to", "know"),
    ("wanted", "to", "know"),
    ("like", "to", "ask"),
    ("want", "to", "ask"),
    ("wanted", "to", "ask"),
)
# A question strands its preposition ("Who is it for?", "Where are you from?").
WH_WORDS = frozenset({"what", "what's", "who", "who's", "where", "where's", "which", "whom"})
_STRANDABLE = frozenset({"to", "for", "of", "with", "from", "at", "into", "near", "than"})
# Whisper writes a trailing-off voice as "...", a dash or a comma.
_TRAILING_OFF = re.compile(r"(\.\.\.|\u2026|,|-|\u2014|\u2013|:)\s*$")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Whisper writes a short reply on its own without its full stop whether or not the voice
# goes on ("Okay", "No", "Hello there": 14 of the turn bench's 16 "Okay." and "No." of
# 2026-12-07 13:02 UTC), so leaving one open says nothing; the audio model decides. Only
# whole turns: "Okay so" and "No I" are open as before.
SHORT_REPLIES = frozenset(
    {
        "yes", "yeah", "yep", "no", "nope", "okay", "ok", "sure", "right", "all right",
        "alright", "fine", "great", "perfect", "cool", "got it", "thanks", "thank you",
        "thanks a lot", "no thanks", "no thank you", "yes please", "okay thanks",
        "okay thank you", "hello", "hello there", "hi", "hi there", "hey", "hey there",
        "good morning", "good afternoon", "good evening", "good night", "bye", "goodbye",
        "bye bye", "see you", "see you later",
    }
)  # fmt: skip
# Whisper closes a sentence it heard end with ".", "?" or "!" (Deepgram too, with the
# plugin's default `punctuate=True`), and leaves one it heard go on open: decoded 100-150 ms
# into a pause, "I would like to know the, um" comes out as "I would like to know that",
# and "Tell me the time and" as "Tell me the time in", words a sentence can end on, written
# without the full stop (docs/voice.md, "A sentence left open").
_SENTENCE_END = re.compile(r"[.?!][\"'\u201d\u2019)\]]*$")


def transcript_unfinished(text: str) -> bool:
    """True when the words so far cannot end a sentence."""
    stripped = text.strip()
    if not stripped:
        return False
    if _TRAILING_OFF.search(stripped):
        return True
    words = _words(stripped)
    if not words:
        return False
    last = words[-1]
    if last in FILLERS:
        return True
    if len(words) > 2 and last in _PERSON and words[-2] in NEEDS_A_THING:
        return True
    if tuple(words[-3:]) in _ANNOUNCES_WORDS:
        return True
    if last not in CONTINUATIONS:
        return False
    if last in _COPULAS and len(words) > 1 and words[-2] in _SUBJECTS:
        return False
    return not (words[0] in WH_WORDS and last in _STRANDABLE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def transcript_closed(text: str) -> bool:
    """True when the STT ended the words with a sentence's end (".", "?", "!")."""
    return _SENTENCE_END.search(text.strip()) is not None


def transcript_open(text: str) -> bool:
    """True when the STT wrote the words so far without a sentence's end: it heard a voice
    that goes on. Empty text and a short reply on its own are left to the audio model."""
    if not text.strip() or transcript_closed(text):
        return False
    return not short_reply(text)


def short_reply(text: str) -> bool:
    """True when the words are one of `SHORT_REPLIES` on their own, however punctuated."""
    return " ".join(_words(text)) in SHORT_REPLIES


def turn_unfinished(text: str) -> bool:
    """True when the transcript cannot end the turn: its words cannot end a sentence, or the
    STT left the sentence open."""
    return transcript_unfinished(text) or transcript_open(text)


def transcript_asks(text: str) -> bool:
    """True when Whisper wrote the words so far as a finished question ("What time is it?"),
    which the audio model often scores as unfinished: a question's rising end sounds like a
    voice that goes on. Whisper also writes "?" on some cut-off questions ("Could you check
    the weather?" of "Could you check the weather in"), so this is scored on the turn bench
    before it is used."""
    stripped = text.strip()
    return stripped.endswith("?") and not transcript_unfinished(stripped)


def vad_min_silence_s(options: VoiceOptions) -> float:
    """The VAD's min_silence_duration to load Silero with. With the model, LiveKit only asks
    it while the VAD still counts the person as speaking: a VAD silence shorter than the
    point where it is asked ends speech first and the model is never asked."""
    if options.turn_detection == "model":
        return max(
            options.vad_min_silence_s,
            options.turn_model_after_silence_s + VAD_SILENCE_AFTER_ASK_S,
        )
    return options.vad_min_silence_s


def ask_model_after_silence(seconds: float) -> None:
    """Make LiveKit ask the end-of-turn model after `seconds` of silence instead of its own
    `LIVEKIT_ASKS_AFTER_S`.
    LiveKit reads the point from a module constant (`AudioRecognition` asks once the VAD's raw
    silence reaches it, and refuses a VAD silence under it + 50 ms), with no option for it;
    the turn bench measured the model asked after 100 ms to tell ends as well as after 200
    ms. A livekit-agents that drops the constant fails here, at start-up, not silently."""
    if not isinstance(getattr(audio_recognition, "MIN_SILENCE_DURATION_MS", None), int):
        raise RuntimeError(
            "livekit-agents changed: livekit.agents.voice.audio_recognition has no "
            "MIN_SILENCE_DURATION_MS, so where the end-of-turn model is asked cannot be set "
            "(arc_voice.turn_detection.ask_model_after_silence)"
        )
    setattr(audio_recognition, "MIN_SILENCE_DURATION_MS", round(seconds * 1000))  # noqa: B010


def prewarm(options: VoiceOptions) -> None:
    """Load the end-of-turn model (~108 MB, a fraction of a second) once per process, so no
    conversation pays for it, and set where LiveKit asks it. Blocking: call it where the
    other models are loaded."""
    if options.turn_detection == "model":
        init_eot()
        ask_model_after_silence(options.turn_model_after_silence_s)


def _for_ask_point(options: VoiceOptions, set_: float | None, early: float, late: float) -> float:
    """A value set, or the one the turn bench chose for where the model is asked."""
    if set_ is not None:
        return set_
    return early if options.turn_model_after_silence_s < LIVEKIT_ASKS_AFTER_S else late


def unlikely_threshold(options: VoiceOptions) -> float:
    return _for_ask_point(
        options, options.turn_unlikely_threshold, UNLIKELY_THRESHOLD_ASKED_EARLY, UNLIKELY_THRESHOLD
    )


@dataclass(frozen=True)
class UnsureWait:
    """The shorter wait for words that can end a sentence scored a little under the threshold:
    `delay_s` after the last speech for a P(end) at or over `threshold`. The model is asked
    `asked_after_s` after the last speech, so the wait is counted from when it was asked: the
    VAD's own clock, which lags the wall clock on a loaded box by as much for the person's next
    sound as for their silence."""

    threshold: float
    delay_s: float
    asked_after_s: float


def unsure_threshold(options: VoiceOptions) -> float:
    return _for_ask_point(
        options, options.turn_unsure_threshold, UNSURE_THRESHOLD_ASKED_EARLY, UNSURE_THRESHOLD
    )


def unsure_wait(options: VoiceOptions) -> UnsureWait | None:
    if not options.endpointing_unsure_delay_s:
        return None
    return UnsureWait(
        unsure_threshold(options),
        options.endpointing_unsure_delay_s,
        options.turn_model_after_silence_s,
    )


class Verdict(enum.Enum):
    """What the transcript rule makes of the words a person ended on, with the audio model's
    score: the one decision the stream and the turn bench share."""

    WAIT_MAX = "max delay"  # words that cannot end a sentence, or left open
    DONE = "at once"  # a finished question
    SHORTER = "shorter wait"  # then done (`UnsureWait`)
    BY_SCORE = "by score"  # the framework compares the score with the unlikely threshold


def verdict(
    words: str, probability: float | None, unlikely_threshold: float, unsure: UnsureWait | None
) -> Verdict:
    if turn_unfinished(words):
        return Verdict.WAIT_MAX
    if transcript_asks(words):
        return Verdict.DONE
    if (
        unsure is not None
        and probability is not None
        and unsure.threshold <= probability < unlikely_threshold
    ):
        return Verdict.SHORTER
    return Verdict.BY_SCORE


def answers_at_once(
    words: str, probability: float, unlikely_threshold: float, unsure: UnsureWait | None
) -> bool:
    """True when the turn ends as soon as the VAD ends speech: the rule says done, or leaves
    it to the score and the framework finds it at or over the threshold."""
    match verdict(words, probability, unlikely_threshold, unsure):
        case Verdict.DONE:
            return True
        case Verdict.BY_SCORE:
            return probability >= unlikely_threshold
        case _:
            return False


def turn_detection_options(
    options: VoiceOptions,
) -> tuple[TurnDetectionMode, EndpointingOptions]:
    """What to pass as `turn_handling["turn_detection"]` and `turn_handling["endpointing"]`.
    One detector per conversation (it keeps that conversation's transcript)."""
    if options.turn_detection == "vad":
        # Without a model nothing asks for max_delay; it is passed for completeness.
        return "vad", {
            "min_delay": options.endpointing_min_delay_s,
            "max_delay": options.endpointing_max_delay_s,
        }
    return TranscriptAwareTurnDetector(unlikely_threshold(options), unsure_wait(options)), {
        "min_delay": options.endpointing_min_delay_s,
        "max_delay": options.endpointing_max_delay_s,
    }


@runtime_checkable
class HearsWordsInFlight(Protocol):
    """An STT that can hand over the decode of the speech that just fell silent."""

    def pending_words(self) -> asyncio.Future[Any] | None: ...


PendingWords = Callable[[], "asyncio.Future[Any] | None"]


def follow_transcripts(session: AgentSession[Any]) -> None:
    """Feed the session's final transcripts to its turn detector (a no-op for the timer),
    and let it wait for the words still being decoded when the STT can say which they are.
    Call once, after creating the session and before starting it."""
    detector = session.turn_detection
    if isinstance(detector, TranscriptAwareTurnDetector):
        session.on("user_input_transcribed", detector.on_transcript)
        if isinstance(session.stt, HearsWordsInFlight):
            detector.pending_words = session.stt.pending_words


async def _text_of(waiter: asyncio.Future[Any], within_s: float) -> str | None:
    """The decode's text, waited for at most `within_s`; None when it is late, was dropped
    (the person went on) or failed."""
    done, _ = await asyncio.wait({waiter}, timeout=max(0.0, within_s))
    if not done or waiter.cancelled() or waiter.exception() is not None:
        return None
    return str(getattr(waiter.result(), "text", "") or "")


class TranscriptAwareTurnDetector:
    """LiveKit's v1-mini audio model with the transcript rule on top (LiveKit's streaming
    turn-detector protocol: `model`, `provider`, `stream()`)."""

    def __init__(
        self, unlikely_threshold: float = UNLIKELY_THRESHOLD, unsure: UnsureWait | None = None
    ) -> None:
        # The threshold stays ours rather than LiveKit's override, which warns on every
        # conversation that a non-default threshold was given.
        self._audio = TurnDetector(version="v1-mini")
        self.unlikely_threshold = unlikely_threshold
        self.unsure = unsure
        self.pending_words: PendingWords | None = None
        self._streams: weakref.WeakSet[TranscriptAwareStream] = weakref.WeakSet()

    @property
    def model(self) -> str:
        return f"{self._audio.model}+transcript-rule"

    @property
    def provider(self) -> str:
        return self._audio.provider

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> TranscriptAwareStream:
        stream = TranscriptAwareStream(self, self._audio.stream(conn_options=conn_options))
        self._streams.add(stream)
        return stream

    def on_transcript(self, ev: UserInputTranscribedEvent) -> None:
        if ev.is_final and ev.transcript.strip():
            for stream in list(self._streams):
                stream.add_transcript(ev.transcript)

    def describe_options(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "unlikely_threshold": self.unlikely_threshold,
            "unsure_threshold": self.unsure.threshold if self.unsure else None,
            "unsure_delay_s": self.unsure.delay_s if self.unsure else None,
        }


class TranscriptAwareStream:
    """One session's stream: audio goes to the v1-mini stream, which predicts; the turn's
    transcript (finals since the last commit) decides whether the bar is the threshold or
    out of reach."""

    def __init__(
        self, detector: TranscriptAwareTurnDetector, audio: _StreamingTurnDetectorStream
    ) -> None:
        self._detector = detector
        self._audio = audio
        self.transcript = ""
        self._delivered = asyncio.Event()
        # The framework's latest ask of the audio model and when it was made (monotonic).
        self._prediction: asyncio.Future[TurnDetectionEvent] | None = None
        self._asked_at = 0.0

    def add_transcript(self, text: str) -> None:
        self.transcript = f"{self.transcript} {text.strip()}".strip()
        self._delivered.set()

    async def words(self, within_s: float = WORDS_WAIT_S) -> str:
        """The words the person ended on. The framework may ask before the final transcript
        of this silence is delivered (at its own VAD's end of speech, a moment before the
        STT's): then the decode still running holds the words that count. A decode whose
        words cannot end a sentence is judged at once; otherwise this waits (within the same
        bound) for those words to be delivered, because the framework commits a turn with the
        transcript it holds, and delivery starts its check again with them."""
        pending = self._detector.pending_words
        waiter = pending() if pending is not None else None
        if waiter is None:
            return self.transcript
        self._delivered.clear()
        deadline = asyncio.get_running_loop().time() + within_s
        text = await _text_of(waiter, within_s)
        if text is None:
            return self.transcript
        pending_words = f"{self.transcript} {text}".strip()
        if turn_unfinished(pending_words):
            return pending_words
        left = deadline - asyncio.get_running_loop().time()
        with contextlib.suppress(TimeoutError):
            # asyncio.timeout, not 3.11's wait_for, which can lose the framework's
            # cancellation of this check when the person speaks again.
            async with asyncio.timeout(max(0.0, left)):
                await self._delivered.wait()
        return self.transcript if self._delivered.is_set() else pending_words

    @property
    def model(self) -> str:
        return self._detector.model

    @property
    def provider(self) -> str:
        return self._audio.provider

    @property
    def is_fallback(self) -> bool:
        return self._audio.is_fallback

    @property
    def prediction_timeout(self) -> float:
        return self._audio.prediction_timeout

    async def unlikely_threshold(self, language: LanguageCode | None) -> float | None:
        if not await self._audio.supports_language(language):
            return None
        words = await self.words()
        threshold, unsure = self._detector.unlikely_threshold, self._detector.unsure
        probability = self._probability()
        match verdict(words, probability, threshold, unsure):
            case Verdict.WAIT_MAX:
                log.debug("transcript sounds unfinished", extra={"transcript": said(words)})
                return _NEVER_FINISHED
            case Verdict.DONE:
                return _ALWAYS_FINISHED
            case Verdict.SHORTER:
                assert unsure is not None and probability is not None
                await self._wait_shorter(unsure, probability)
                # The shorter wait is over: the framework commits after its min delay,
                # already past (it counts from the last speech).
                return _ALWAYS_FINISHED
            case Verdict.BY_SCORE:
                return threshold

    async def _wait_shorter(self, unsure: UnsureWait, probability: float) -> None:
        """Waits out the shorter wait, counted from the last speech. The framework cancels
        this wait, with its end-of-turn check, when the person goes on."""
        left = self._asked_at - unsure.asked_after_s + unsure.delay_s - time.monotonic()
        log.debug(
            "end of turn unsure: shorter wait",
            extra={"probability": round(probability, 3), "wait_s": round(max(left, 0.0), 3)},
        )
        if left > 0:
            await asyncio.sleep(left)

    def _probability(self) -> float | None:
        fut = self._prediction
        if fut is None or not fut.done() or fut.cancelled() or fut.exception() is not None:
            return None
        return fut.result().end_of_turn_probability

    async def backchannel_threshold(self, language: LanguageCode | None) -> float | None:
        return await self._audio.backchannel_threshold(language)

    async def supports_language(self, language: LanguageCode | None) -> bool:
        return await self._audio.supports_language(language)

    def predict(self) -> asyncio.Future[TurnDetectionEvent]:
        self._asked_at = time.monotonic()
        self._prediction = self._audio.predict()
        return self._prediction

    def cancel_inference(self, *, timed_out: bool = False) -> None:
        self._prediction = None
        self._audio.cancel_inference(timed_out=timed_out)

    def flush(self, reason: str | None = None) -> None:
        # The framework flushes when a turn is committed or cleared: the next turn's words
        # start afresh.
        self.transcript = ""
        self._prediction = None
        self._audio.flush(reason)

    def push_audio(self, frame: rtc.AudioFrame) -> None:
        self._audio.push_audio(frame)

    def end_input(self) -> None:
        self._audio.end_input()

    async def aclose(self) -> None:
        await self._audio.aclose()
