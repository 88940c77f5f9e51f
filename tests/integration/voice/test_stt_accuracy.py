"""Whisper's accuracy on a fixed set of spoken sentences, and what the short window and the
streaming recogniser cost in words: the real `tiny.en` model, the real Silero VAD behind the
noise gate, speech from three synthetic voices (the Piper voice the TTS service speaks with,
and two of espeak-ng's, which sound nothing like it).

Word error rate (WER) is counted over the whole set: word edits (substitutions, insertions,
deletions) after normalising case, punctuation and numbers, over the reference's words.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio
from arc_voice.caller import resample
from arc_voice.models import VAD_SAMPLE_RATE, VoiceModels
from arc_voice.noise_floor import GateConfig
from arc_voice.plugins.gated_vad import GatedVAD
from arc_voice.plugins.stt import Recognition, WhisperEngine, WhisperOptions
from arc_voice.plugins.whisper_stream import StreamingWhisperSTT
from arc_voice.settings import VoiceOptions
from livekit import rtc
from livekit.agents import stt

from tests.fixtures.speakers import EspeakSynth
from tests.fixtures.voice import SpeechSynth

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FRAME = VAD_SAMPLE_RATE // 50

SENTENCES = (
    "Hello!",
    "Stop.",
    "Yes, please.",
    "What time is it?",
    "Thank you very much.",
    "What's the weather like in Paris today?",
    "Can you remind me to call my mother at six?",
    "How far is it from London to Edinburgh?",
    "Please turn off the lights in the kitchen.",
    "Who wrote the novel Pride and Prejudice?",
    "Set a timer for twenty five minutes.",
    "What is fifteen times twelve?",
    # (a time like "seven forty five" is left out: "745" is a fair way to write it that no
    # text normalisation can tell from "seven hundred forty five")
    "My flight to Tokyo leaves at half past seven tomorrow morning.",
    "Send a message to Sarah Johnson saying I will be late.",
    "How many people live in Canada?",
    "Tell me a short story about a dragon and a knight.",
    "Could you please stop for a moment?",
    "Where did I leave my keys?",
    "What did Albert Einstein win the Nobel Prize for?",
    "Book a table for four people at eight o'clock on Friday.",
    "I would like to order two large pizzas and a bottle of water.",
    "Is it going to rain this weekend in Seattle?",
    "Play some relaxing music in the living room.",
    "How do I make a cup of green tea?",
    "Remember that my sister's birthday is on the third of March.",
    "What is the capital city of Australia?",
    "Convert one hundred dollars to euros.",
    "Can you explain how a rainbow forms after a storm?",
    "My name is Daniel and I live in Chicago.",
    "Add eggs, milk, and bread to the shopping list.",
    "When does the next train to Boston leave?",
    "Why is the sky blue during the day but red at sunset?",
    "Turn the volume down a little bit.",
    "What is the square root of eighty one?",
    "Call Doctor Martinez and ask whether the appointment on Tuesday is still on.",
    "I think we should start the meeting without Michael because he is stuck in traffic.",
)

# Measured on this set over five runs (Piper's synthesis and CTranslate2's int8 arithmetic
# vary a little from run to run), over all three voices: padded window 0.084-0.095, short
# window 0.082-0.089 (0.1-1.2 points under the padded one), streaming final 0.058-0.078.
# Per voice: Piper 0.02-0.04, espeak-ng 0.06-0.13. The bound leaves room for that variation,
# not for a broken decoder or guard.
MAX_WER = 0.12
# The short window may cost at most this much over the padded window on the same audio. The
# transcripts vary between runs even on identical audio (cause not pinned down): on 2026-12-02
# short minus padded was +1.03
# points in one CI run (failing a 1-point bound) and -0.81 and +0.11 in two runs in a row
# on the same fixed audio. Two points still fails a short window that loses words.
MAX_SHORT_WINDOW_LOSS = 0.02
# The streaming final hears the utterance as the VAD cut it (its lead-in, the gate, and a
# sentence with a pause in it as two utterances), not the clean clip: a little worse.
MAX_STREAMING_LOSS = 0.03

# -- word error rate ----------------------------------------------------------------------------

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_SPELLED = {"dr": "doctor", "mr": "mister", "mrs": "missus", "st": "saint"}


def number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in _SCALES:
        if n >= size:
            rest = n % size
            return f"{number_words(n // size)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError(n)


def normalise(text: str) -> list[str]:
    """Words to compare: lower case, no punctuation, numbers and a few abbreviations spelt
    out, so "$100" and "one hundred dollars", "7:45" and "seven forty five" agree."""
    t = text.lower()
    t = re.sub(r"(\d),(\d{3})", r"\1\2", t)
    t = re.sub(r"\$(\d+)", r"\1 dollars", t)
    t = re.sub(r"(\d+):00\b", r"\1", t)
    t = t.replace("%", " percent")
    t = re.sub(r"\d+", lambda m: f" {number_words(int(m[0]))} ", t)
    t = re.sub(r"[^a-z' ]+", " ", t).replace("'", "")
    return [_SPELLED.get(word, word) for word in t.split()]


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        diagonal, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ref != hyp))
    return row[-1]


def word_error_rate(pairs: Sequence[tuple[str, str]]) -> float:
    """Corpus WER of (reference, hypothesis) pairs."""
    edits = sum(edit_distance(normalise(ref), normalise(hyp)) for ref, hyp in pairs)
    words = sum(len(normalise(ref)) for ref, _ in pairs)
    return edits / words


def test_word_error_rate_counts_edits_over_reference_words() -> None:
    assert word_error_rate([("What time is it?", "what time is it")]) == 0.0
    assert word_error_rate([("Convert one hundred dollars.", "convert $100")]) == 0.0
    assert word_error_rate([("at seven forty five", "at 7:45")]) == 0.0
    assert word_error_rate([("Call Doctor Martinez", "Call Dr. Martinez")]) == 0.0
    assert word_error_rate([("a b c d", "a x c")]) == 0.5  # one substitution, one deletion
    assert word_error_rate([("a b", "a b c d")]) == 1.0  # two insertions
    assert word_error_rate([("a b c d", "a b c d"), ("e f", "")]) == pytest.approx(2 / 6)


# -- the spoken set -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spoken:
    voice: str
    text: str
    audio: npt.NDArray[np.float32]  # mono, 16 kHz, [-1, 1]


def _to_16k(pcm: bytes, rate: int) -> npt.NDArray[np.float32]:
    samples = np.frombuffer(resample(pcm, rate, VAD_SAMPLE_RATE), np.int16)
    return samples.astype(np.float32) / 32768.0


@pytest.fixture(scope="session")
def spoken_set(speech: SpeechSynth) -> list[Spoken]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/bootstrap.sh installs it)")
    voices: tuple[tuple[str, SpeechSynth | EspeakSynth], ...] = (
        ("piper", speech),
        ("espeak-us", EspeakSynth("en-us+f3", words_per_minute=150)),
        ("espeak-gb", EspeakSynth("en-gb", words_per_minute=160)),
    )
    # Piper without its sampled noise (`say_plain`): the same audio every run, so the windows
    # are compared on fixed speech (with `say`, a 1-point swing from one draw to the next
    # was enough to fail the 1-point bound below in CI).
    return [
        Spoken(
            name,
            text,
            _to_16k(
                *(synth.say_plain(text) if isinstance(synth, SpeechSynth) else synth.say(text))
            ),
        )
        for name, synth in voices
        for text in SENTENCES
    ]


@pytest.fixture(scope="session")
def padded_engine(voice_models: VoiceModels) -> Iterator[WhisperEngine]:
    assert voice_models.whisper is not None
    engine = WhisperEngine(
        WhisperOptions(model_dir=voice_models.whisper.options.model_dir, full_window=True)
    )
    yield engine
    engine.close()


@dataclass(frozen=True)
class Transcripts:
    by_voice: dict[str, list[tuple[str, str]]]

    def wer(self, voice: str | None = None) -> float:
        pairs = [
            pair for name, rows in self.by_voice.items() if voice in (None, name) for pair in rows
        ]
        return word_error_rate(pairs)

    def table(self) -> str:
        return " ".join(f"{v}={self.wer(v):.4f}" for v in self.by_voice) + f" all={self.wer():.4f}"


async def _transcribe_all(engine: WhisperEngine, spoken: list[Spoken]) -> Transcripts:
    by_voice: dict[str, list[tuple[str, str]]] = {}
    for item in spoken:
        recognition = await engine.recognise(item.audio)
        by_voice.setdefault(item.voice, []).append((item.text, recognition.text))
    return Transcripts(by_voice)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def padded_transcripts(padded_engine: WhisperEngine, spoken_set: list[Spoken]) -> Transcripts:
    return await _transcribe_all(padded_engine, spoken_set)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def short_transcripts(voice_models: VoiceModels, spoken_set: list[Spoken]) -> Transcripts:
    assert voice_models.whisper is not None
    assert not voice_models.whisper.options.full_window, "the worker's default is the short window"
    return await _transcribe_all(voice_models.whisper, spoken_set)


def _frames(samples: npt.NDArray[np.float32]) -> list[rtc.AudioFrame]:
    pcm = np.clip(samples * 32768.0, -32768, 32767).astype(np.int16)
    return [
        rtc.AudioFrame(pcm[i : i + FRAME].tobytes(), VAD_SAMPLE_RATE, 1, FRAME)
        for i in range(0, len(pcm) - FRAME + 1, FRAME)
    ]


def _with_silence(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    lead = np.zeros(VAD_SAMPLE_RATE // 2, np.float32)
    tail = np.zeros(VAD_SAMPLE_RATE, np.float32)
    return np.concatenate([lead, audio, tail])


async def _stream(
    recogniser: StreamingWhisperSTT,
    audio: npt.NDArray[np.float32],
    *,
    realtime: bool,
    after_each_frame: Callable[[], None] = lambda: None,
) -> list[stt.SpeechEvent]:
    """Every event the stream gives for `audio`, pushed in 20 ms frames (at the pace of a
    microphone when `realtime`)."""
    stream = recogniser.stream()
    events: list[stt.SpeechEvent] = []

    async def push() -> None:
        for frame in _frames(audio):
            stream.push_frame(frame)
            if realtime:
                await asyncio.sleep(FRAME / VAD_SAMPLE_RATE)
            after_each_frame()
        stream.end_input()

    pusher = asyncio.create_task(push())
    try:
        async with asyncio.timeout(60):
            async for event in stream:
                events.append(event)
        await pusher
    finally:
        pusher.cancel()
        await stream.aclose()
    return events


def _recogniser(models: VoiceModels, **options: float) -> StreamingWhisperSTT:
    recogniser = models.recogniser(VoiceOptions(**options), GatedVAD(models.vad, GateConfig()))
    assert isinstance(recogniser, StreamingWhisperSTT)
    return recogniser


def _finals(events: list[stt.SpeechEvent]) -> list[str]:
    return [
        e.alternatives[0].text
        for e in events
        if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT and e.alternatives
    ]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def streamed_transcripts(voice_models: VoiceModels, spoken_set: list[Spoken]) -> Transcripts:
    """The streaming recogniser's finals, one utterance per stream, pushed faster than real
    time (the VAD and the decodes still run as they do in a call)."""
    recogniser = _recogniser(voice_models)
    by_voice: dict[str, list[tuple[str, str]]] = {}
    for item in spoken_set:
        finals = _finals(await _stream(recogniser, _with_silence(item.audio), realtime=False))
        by_voice.setdefault(item.voice, []).append((item.text, " ".join(finals)))
    return Transcripts(by_voice)


# -- the tests ----------------------------------------------------------------------------------


def test_short_window_is_as_accurate_as_the_padded_window(
    padded_transcripts: Transcripts, short_transcripts: Transcripts
) -> None:
    print(f"\nWER padded window: {padded_transcripts.table()}")
    print(f"WER short window:  {short_transcripts.table()}")
    assert padded_transcripts.wer() <= MAX_WER, padded_transcripts.table()
    assert short_transcripts.wer() <= MAX_WER, short_transcripts.table()
    assert short_transcripts.wer() <= padded_transcripts.wer() + MAX_SHORT_WINDOW_LOSS, (
        short_transcripts.table(),
        padded_transcripts.table(),
    )


def test_streaming_final_is_as_accurate_as_the_short_window(
    short_transcripts: Transcripts, streamed_transcripts: Transcripts
) -> None:
    print(f"\nWER streaming final: {streamed_transcripts.table()}")
    assert streamed_transcripts.wer() <= MAX_WER, streamed_transcripts.table()
    assert streamed_transcripts.wer() <= short_transcripts.wer() + MAX_STREAMING_LOSS, (
        streamed_transcripts.table(),
        short_transcripts.table(),
    )


async def test_an_utterance_longer_than_one_window(
    voice_models: VoiceModels, spoken_set: list[Spoken]
) -> None:
    """Over 30 s (a monologue the VAD never cut) goes through faster-whisper's chunking; every
    chunk is transcribed, not only the first sentences of each."""
    assert voice_models.whisper is not None
    piper = [item for item in spoken_set if item.voice == "piper"][5:]
    parts: list[Spoken] = []
    while sum(p.audio.size for p in parts) < 34 * VAD_SAMPLE_RATE:
        parts.append(piper[len(parts)])
    recognition = await voice_models.whisper.recognise(np.concatenate([p.audio for p in parts]))
    said = " ".join(p.text for p in parts)
    # measured 0.05; chunking that drops the rest of a window after its first sentences
    # scored 0.69
    assert word_error_rate([(said, recognition.text)]) <= 0.15, recognition.text


def _noises() -> dict[str, npt.NDArray[np.float32]]:
    rate = VAD_SAMPLE_RATE
    rng = np.random.default_rng(11)
    out: dict[str, npt.NDArray[np.float32]] = {}
    for seconds in (0.5, 1.0, 2.0, 3.0):
        n = int(rate * seconds)
        fan = np.convolve(rng.normal(size=n), np.ones(8) / 8, "same")
        clicks = np.zeros(n)
        for at in np.arange(0.1, seconds - 0.05, 0.18):
            start = int(at * rate)
            clicks[start : start + 60] += rng.normal(size=60) * np.exp(-np.arange(60) / 12)
        t = np.arange(n) / rate
        hum = np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t)
        for name, wave in (
            ("silence", np.zeros(n)),
            ("fan", fan / np.sqrt(np.mean(fan**2)) * 0.01),
            ("loud fan", fan / np.sqrt(np.mean(fan**2)) * 0.1),
            ("white noise", rng.normal(size=n) * 0.03),
            ("typing", clicks * 0.25),
            ("mains hum", hum * 0.06),
        ):
            out[f"{name} {seconds} s"] = wave.astype(np.float32)
    return out


async def test_noise_and_silence_give_no_words(
    voice_models: VoiceModels, padded_engine: WhisperEngine
) -> None:
    """Without the "no speech" rule the short window turns a second of fan noise into
    "I'm going to go to the ground."; with it, nothing."""
    assert voice_models.whisper is not None
    heard: dict[str, str] = {}
    for name, noise in _noises().items():
        for label, engine in (("short", voice_models.whisper), ("padded", padded_engine)):
            recognition = await engine.recognise(noise)
            if recognition.text:
                heard[f"{label}: {name}"] = recognition.text
    assert heard == {}

    # and through the streaming recogniser (VAD, gate and all): no transcript at all
    recogniser = _recogniser(voice_models)
    room = np.concatenate(list(_noises().values()))
    events = await _stream(recogniser, room, realtime=False)
    assert [e for e in events if e.alternatives and e.alternatives[0].text] == []


async def test_a_question_said_from_the_first_frame_is_heard_whole(
    voice_models: VoiceModels, speech: SpeechSynth
) -> None:
    """A socket client that sends its recording at once gives the noise gate no background
    to learn before the words. The gate used to take the first words for the room's floor
    and shut on the rest, so the VAD ended the utterance early: "What can you do?" came out
    as "What can you" in 8 of 30 renditions (2026-12-06). Six fresh renditions, each from
    its first frame."""
    heard = []
    for _ in range(6):
        audio = _to_16k(*speech.say_afresh("What can you do?"))
        events = await _stream(
            _recogniser(voice_models),
            np.concatenate([audio, np.zeros(VAD_SAMPLE_RATE, np.float32)]),
            realtime=False,
        )
        heard.append(_finals(events))
    assert all(len(f) == 1 and "what can you do" in f[0].lower() for f in heard), heard


async def test_interims_come_while_the_person_speaks(
    voice_models: VoiceModels, speech: SpeechSynth
) -> None:
    text = "I think we should start the meeting without Michael because he is stuck in traffic."
    audio = _with_silence(_to_16k(*speech.say(text)))
    recogniser = _recogniser(voice_models, stt_interim_interval_s=0.3)
    events = await _stream(recogniser, audio, realtime=True)
    kinds = [e.type for e in events]
    assert kinds[0] == stt.SpeechEventType.START_OF_SPEECH, kinds
    assert kinds.count(stt.SpeechEventType.FINAL_TRANSCRIPT) == 1, kinds
    final_at = kinds.index(stt.SpeechEventType.FINAL_TRANSCRIPT)
    interims = [
        e.alternatives[0].text
        for e in events[:final_at]
        if e.type == stt.SpeechEventType.INTERIM_TRANSCRIPT
    ]
    assert interims, kinds
    # interims before the end of speech, none after the final
    assert kinds.index(stt.SpeechEventType.INTERIM_TRANSCRIPT) < kinds.index(
        stt.SpeechEventType.END_OF_SPEECH
    )
    assert stt.SpeechEventType.INTERIM_TRANSCRIPT not in kinds[final_at:]
    final = _finals(events)[0]
    assert word_error_rate([(text, final)]) <= 0.15, final
    # the interims grow with the utterance: the last one has more words than the first
    assert len(normalise(interims[-1])) > len(normalise(interims[0])), interims
    usage = [e for e in events if e.type == stt.SpeechEventType.RECOGNITION_USAGE]
    assert len(usage) == 1 and usage[0].recognition_usage is not None
    assert usage[0].recognition_usage.audio_duration > 3.0
    # the final was ready within one short decode of the VAD's end of speech
    timing = recogniser.finals[-1]
    assert timing.recognition.text == final
    assert timing.after_speech_end_s < 1.0, timing


async def test_no_interims_when_the_interval_is_zero(
    voice_models: VoiceModels, speech: SpeechSynth
) -> None:
    text = "Could you please stop for a moment?"
    recogniser = _recogniser(voice_models, stt_interim_interval_s=0.0)
    events = await _stream(recogniser, _with_silence(_to_16k(*speech.say(text))), realtime=True)
    kinds = [e.type for e in events]
    assert stt.SpeechEventType.INTERIM_TRANSCRIPT not in kinds, kinds
    assert "stop for a moment" in " ".join(_finals(events)).lower(), events


async def test_the_words_being_decoded_at_the_end_of_speech_are_the_final(
    voice_models: VoiceModels, speech: SpeechSynth
) -> None:
    """The end-of-turn rule waits on `pending_words()` when the framework asks before the
    final transcript is delivered: what it gets must be that final's words."""
    text = "I would like to know the time right now."
    recogniser = _recogniser(voice_models)
    named: list[asyncio.Future[Recognition]] = []  # each decode named, in order

    def note_pending() -> None:
        waiter = recogniser.pending_words()
        if waiter is not None and (not named or named[-1] is not waiter):
            named.append(waiter)

    audio = _with_silence(_to_16k(*speech.say(text)))
    events = await _stream(recogniser, audio, realtime=True, after_each_frame=note_pending)
    [final] = _finals(events)
    assert named, "no decode was named while the person was silent after speaking"
    # the last one named is the one whose words became the final
    assert (await named[-1]).text == final
    assert recogniser.pending_words() is None  # delivered: nothing is pending any more


async def test_in_a_session_the_recogniser_follows_the_sessions_vad(
    voice_models: VoiceModels, speech: SpeechSynth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One Silero per conversation: the recogniser reads the events of the stream the session
    runs on its `GatedVAD` (fed the same frames, as LiveKit feeds the STT and the VAD) and
    starts no VAD stream of its own, with the same interims, final and pending words."""
    text = "Could you please stop for a moment?"
    session_vad = GatedVAD(voice_models.vad, GateConfig())
    streams_opened: list[object] = []
    opened = session_vad.stream

    def counting_stream() -> object:
        streams_opened.append(object())
        return opened()

    monkeypatch.setattr(session_vad, "stream", counting_stream)
    recogniser = voice_models.recogniser(VoiceOptions(), session_vad, shared_vad=True)
    assert isinstance(recogniser, StreamingWhisperSTT)
    session_stream = session_vad.stream()  # the session's: LiveKit's own VAD task opens it
    session_events: list[str] = []

    async def session() -> None:
        async for event in session_stream:
            session_events.append(event.type.value)

    follower = asyncio.create_task(session())
    named: list[asyncio.Future[Recognition]] = []

    def feed_the_session(frame: rtc.AudioFrame) -> None:
        session_stream.push_frame(frame)
        waiter = recogniser.pending_words()
        if waiter is not None and (not named or named[-1] is not waiter):
            named.append(waiter)

    audio = _with_silence(_to_16k(*speech.say(text)))
    frames = iter(_frames(audio))
    try:
        events = await _stream(
            recogniser,
            audio,
            realtime=True,
            after_each_frame=lambda: feed_the_session(next(frames)),
        )
    finally:
        session_stream.end_input()
        await session_stream.aclose()
        follower.cancel()
    assert len(streams_opened) == 1, "the recogniser opened a VAD stream of its own"
    assert not session_vad._subscribers  # the finished stream let go of the session's VAD
    assert "end_of_speech" in session_events, session_events
    kinds = [e.type for e in events]
    assert stt.SpeechEventType.INTERIM_TRANSCRIPT in kinds or (
        stt.SpeechEventType.PREFLIGHT_TRANSCRIPT in kinds
    ), kinds
    [final] = _finals(events)
    assert "stop for a moment" in final.lower(), final
    assert named and (await named[-1]).text == final


def test_only_a_gated_vad_is_shared(voice_models: VoiceModels) -> None:
    with pytest.raises(ValueError, match="GatedVAD"):
        voice_models.recogniser(VoiceOptions(), voice_models.vad, shared_vad=True)


async def test_two_workers_decode_two_utterances_side_by_side(
    voice_models: VoiceModels, speech: SpeechSynth
) -> None:
    """Two people who stop at the same moment: with the default two workers the second decode
    does not wait for the first; with one worker (before) it does."""
    assert voice_models.whisper is not None
    assert voice_models.whisper.options.workers == VoiceOptions().whisper_workers == 2
    audio = _to_16k(*speech.say("Could you please stop for a moment?"))

    async def both(engine: WhisperEngine) -> tuple[Recognition, Recognition]:
        first, second = await asyncio.gather(engine.recognise(audio), engine.recognise(audio))
        assert "stop for a moment" in first.text.lower() and first.text == second.text
        return first, second

    first, second = await both(voice_models.whisper)
    assert second.started_at < first.finished_at and first.started_at < second.finished_at
    one = WhisperEngine(
        WhisperOptions(model_dir=voice_models.whisper.options.model_dir, workers=1, cpu_threads=2)
    )
    try:
        first, second = await both(one)
        assert second.started_at >= first.finished_at
    finally:
        one.close()


async def test_the_speculative_final_does_not_wait_for_a_running_interim(
    voice_models: VoiceModels, speech: SpeechSynth
) -> None:
    """With interims back to back one is always running when the person falls silent: the
    decode whose words may end the turn starts at that first silent window, beside it on the
    engine's other worker, instead of after it (it waited up to a whole interim before)."""
    recogniser = _recogniser(voice_models, stt_interim_interval_s=0.05)
    texts = (
        "Can you remind me to call my mother at six?",
        "Please turn off the lights in the kitchen.",
        "How far is it from London to Edinburgh?",
    )
    timings = []
    for text in texts:
        audio = _with_silence(_to_16k(*speech.say(text)))
        [final] = _finals(await _stream(recogniser, audio, realtime=True))
        assert word_error_rate([(text, final)]) <= 0.25, final
        timings.append(recogniser.finals[-1])
        assert timings[-1].recognition.text == final
    speculative = [t for t in timings if t.speculative]
    assert speculative, timings
    for timing in speculative:
        assert timing.decode_waited_s is not None and timing.decode_waited_s < 0.01, timing
    # what the test is about happened: an interim was running at the first silent window
    assert any(t.superseded for t in speculative), timings
