"""End of turn: does a model tell a finished sentence from a pause mid-sentence, and how fast.

Utterances are synthesised (the Piper voice of the TTS service, and espeak-ng's en-us and
en-gb voices when espeak-ng is installed) in three kinds:
- complete: a whole sentence, up to its real end;
- incomplete: a sentence cut at a word boundary ("I'd like to book a table for"), by
  synthesising the prefix;
- paused: a prefix, 400 ms of silence, a filler ("um"), then silence.

Sentences with a comma are synthesised whole as well, to see where a voice's own pause at the
comma ends speech before the sentence does ("What's on my calendar, for this afternoon?"), at
LiveKit's ask point and at 100 ms, and whether the shipped rule takes the turn there.

Every utterance gets a steady noise floor (a microphone is never digitally silent; the models
are also scored on digital silence) and one second of silence after it. Silero VAD (as the
worker loads it) runs over it and the utterance is judged where LiveKit's `AudioRecognition`
asks the audio model: the first VAD window with 200 ms of silence while the person is still
speaking (`MIN_SILENCE_DURATION_MS`), after the last speech. The audio models see the audio
up to that point; the text rule sees Whisper tiny.en's transcript of each spoken piece, as
the worker would have it (and, for reference, the written text).

Candidates: LiveKit's v1-mini audio model (`livekit-local-inference`), the transcript rule
in `arc_voice.turn_detection`, and the two combined (not finished if either says so).
Smart Turn v3.2 (pipecat-ai's ONNX) is scored too when `ARC_BENCH_SMART_TURN_WHEEL` names a
downloaded pipecat-ai wheel; it is not a dependency of the project.

"Done" means P(end of turn) at or over the threshold: the agent answers after `min_delay`.
Under it, the agent waits `max_delay` more. A cut-off is an incomplete or paused utterance
called done; a needless wait is a complete one called not done. The shipped candidate is
also scored with the shorter wait for unsure scores (`endpointing_unsure_delay_s`), and a
paused utterance is judged at its first pause too, before its filler, where that wait must
last until the VAD hears the filler.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from arc_voice.caller import resample
from arc_voice.plugins.stt import WhisperEngine, WhisperOptions, bundled_model_dir
from arc_voice.settings import VoiceOptions
from arc_voice.turn_detection import (
    UnsureWait,
    Verdict,
    answers_at_once,
    short_reply,
    transcript_asks,
    transcript_closed,
    transcript_unfinished,
    turn_unfinished,
    unlikely_threshold,
    unsure_wait,
    vad_min_silence_s,
    verdict,
)
from livekit import rtc
from livekit.agents import vad
from livekit.agents.inference.eot.base import MIN_SILENCE_DURATION_MS
from livekit.local_inference import EOT, EOT_MAX_SAMPLES, init_eot
from livekit.plugins import silero

from tests.bench.report import Stats, section_header, write_section
from tests.fixtures.speakers import EspeakSynth
from tests.fixtures.voice import SpeechSynth

Kind = Literal["complete", "incomplete", "paused"]
Pcm = npt.NDArray[np.int16]

RATE: Literal[16000] = 16000
FRAME = RATE // 50
PIPER_TAKES = 2
PAUSE_S = 0.4
TAIL_S = 1.0
# Mean level of the noise floor added to every utterance (about -60 dBFS).
NOISE_RMS = 33.0
# The VAD the model needs (LiveKit refuses a shorter min_silence_duration with its detector).
VAD_MIN_SILENCE_S = (MIN_SILENCE_DURATION_MS + 50) / 1000
THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.36, 0.4, 0.45, 0.5, 0.6, 0.7)
V1_MINI_DEFAULT = 0.36  # LiveKit's shipped English threshold for v1-mini
# LiveKit asks the model after 200 ms of silence; asked after 100 ms, a "done" would end the
# turn ~100 ms sooner (the VAD's own silence could then be 150 ms). Scored as a candidate of
# its own: the same model on less trailing silence than LiveKit asks it with.
EARLY = "v1-mini asked at 100 ms"
ASKED_AT_MS = {EARLY: 100}
_SHIPPED = VoiceOptions()
# Where the worker asks the model (`turn_model_after_silence_s`), the candidate scored there,
# its threshold and the VAD silence it ends speech after: the shipped rule below.
SHIPPED_ASK_MS = round(_SHIPPED.turn_model_after_silence_s * 1000)
SHIPPED_MODEL = {MIN_SILENCE_DURATION_MS: "v1-mini", **{ms: n for n, ms in ASKED_AT_MS.items()}}[
    SHIPPED_ASK_MS
]
SHIPPED_THRESHOLD = unlikely_threshold(_SHIPPED)
SHIPPED_VAD_SILENCE_S = vad_min_silence_s(_SHIPPED)
KINDS: tuple[Kind, ...] = ("complete", "incomplete", "paused")
CONDITIONS = {"noise floor": NOISE_RMS, "digital silence": 0.0}
_OLD = VoiceOptions.before_latency_work()
# End of turn after the last speech with the silence timer the model replaces (0.35 + 0.1 s).
OLD_END_OF_TURN_S = _OLD.vad_min_silence_s + _OLD.endpointing_min_delay_s
MAX_DELAY_S = VoiceOptions().endpointing_max_delay_s
UNSURE = unsure_wait(VoiceOptions())
# The share of complete sentences allowed to wait max_delay: one in five keeps their mean end
# of turn (~0.4 s) under the old timer's while the model catches what it can.
FALSE_WAIT_BUDGET = 0.2

COMPLETE = (
    "What's the weather like in Paris tomorrow?",
    "Can you book a table for two at seven?",
    "I'd like to book a table for four people tonight.",
    "Please remind me to call my mother at six.",
    "How long does it take to drive to the airport?",
    "Thanks, that's all I needed.",
    "Set a timer for ten minutes.",
    "What time is it in Tokyo right now?",
    "Yes, please.",
    "Could you read me my last three messages?",
    "I'm looking for a good Italian restaurant nearby.",
    "Turn off the lights in the kitchen.",
    "No, I meant next Friday.",
    "Add milk and eggs to my shopping list.",
    # A stranded preposition or a verb particle ends these, as in everyday speech.
    "Who is this package for?",
    "Where are you calling from?",
    "Can you check me in?",
    "Please turn the heating on.",
    # Short ones, which Whisper often leaves open ("Hello there").
    "Hello there.",
    "Good morning.",
    "Thank you.",
    "Okay.",
    "No.",
    "See you later.",
)
INCOMPLETE = (
    "I'd like to book a table for",
    "Can you tell me the weather in",
    "Please remind me to",
    "I want to go to the",
    "Could you add some",
    "The meeting is with",
    "I need a flight from London to",
    "Set an alarm for",
    "What's the best way to get to the",
    "Send a message to my",
    "I think that we should",
    "Play some music by",
    "Is there a pharmacy near",
    "My name is",
    # Cut after a content word: the words so far could be a whole sentence.
    "I'd like to book a table",
    "Remind me to call my mother",
    "How long does it take to drive",
    "Could you check the weather",
    # Short beginnings.
    "I want",
    "Let me",
    "Can you",
)
PAUSED = (
    ("I'd like to", "um"),
    ("Can I get a", "um"),
    ("The address is", "uh"),
    ("I'm looking for", "um"),
    ("Book me a flight to", "uh"),
    ("My order number is", "um"),
    ("Could you check if", "um"),
    ("Tell me about", "um"),
    ("I'd like to book a table", "um"),
    ("So I was thinking", "uh"),
    ("Remind me to call", "um"),
    ("What's the fastest way", "uh"),
    ("I'd like to know", "um"),
)


# Whole sentences with a clause a person may pause before; the first clause alone is most often
# a finished sentence or question.
CLAUSES = (
    "Could you please tell me what time it is right now, if you know?",
    "What's the weather like tomorrow, in Paris?",
    "Can you book a table for two, at seven tonight?",
    "If it rains tomorrow, remind me to take an umbrella.",
    "Well, what time is it?",
    "Actually, could you set a timer for ten minutes?",
    "Is it going to rain today, or tomorrow?",
    "What's on my calendar, for this afternoon?",
    "Tell me the time, please.",
    "Do I need a coat today, do you think?",
    "Where is the nearest pharmacy, and is it open?",
    "When you have a moment, read me my messages.",
)
# Piper pauses at some commas in some takes, espeak-ng hardly: more Piper takes for these.
CLAUSE_PIPER_TAKES = 6
# Where the worker could ask the model: LiveKit's point (the default) and 100 ms.
CLAUSE_ASK_MS = (MIN_SILENCE_DURATION_MS, ASKED_AT_MS[EARLY])
# With the preemptive answer ready, its first audio reaches the person about this long after
# the turn is committed (first frame ~15 ms, transport ~80 ms: docs/voice.md, "Latency").
HEARD_AFTER_COMMIT_S = 0.1


@dataclass
class Utterance:
    kind: Kind
    text: str
    voice: str
    pieces: list[Pcm]  # the spoken parts, without the silence between them

    def audio(self, noise_rms: float, seed: int) -> Pcm:
        pause = np.zeros(int(PAUSE_S * RATE), np.float64)
        parts: list[npt.NDArray[np.float64]] = []
        for i, piece in enumerate(self.pieces):
            if i:
                parts.append(pause)
            parts.append(piece.astype(np.float64))
        parts.append(np.zeros(int(TAIL_S * RATE), np.float64))
        signal = np.concatenate(parts)
        if noise_rms > 0:
            signal += np.random.default_rng(seed).normal(0.0, noise_rms, len(signal))
        return np.clip(signal, -32768, 32767).astype(np.int16)


@dataclass
class Scored:
    utterance: Utterance
    condition: str
    decision_at: int | None  # samples into the audio where the model is asked
    said: str = ""  # Whisper's words for the whole utterance
    scores: dict[str, float] = field(default_factory=dict)  # candidate -> P(end of turn)
    # A paused utterance at its first pause (before the filler): where the model is asked,
    # v1-mini's score there, and where the VAD reports the filler (samples).
    first_at: int | None = None
    first_score: float | None = None
    first_said: str = ""  # Whisper's words for the part before the filler
    resumed_at: int | None = None


@functools.cache
def options_at(ask_ms: int) -> VoiceOptions:
    """The worker's settings with the model asked `ask_ms` into the silence."""
    return VoiceOptions(turn_model_after_silence_s=ask_ms / 1000)


@dataclass(frozen=True)
class ClausePause:
    """A sentence whose speech the VAD ended at a comma, with the model asked `ask_ms` into the
    silence: samples into the audio where it was asked, where the VAD ended speech and where it
    heard the person go on; Whisper's words up to that end of speech, v1-mini's score."""

    text: str
    voice: str
    ask_ms: int
    asked_at: int
    ended_at: int
    resumed_at: int
    said: str
    score: float

    @functools.cached_property
    def taken_at(self) -> int:
        """Where the worker asking the model at this point commits the turn (samples)."""
        options = options_at(self.ask_ms)
        waits = wait_s(
            self.said,
            self.score,
            unsure_wait(options),
            threshold=unlikely_threshold(options),
            done_s=vad_min_silence_s(options),
        )
        last_speech = self.asked_at - self.ask_ms * RATE // 1000
        return max(self.ended_at, last_speech + round(waits * RATE))

    @property
    def taken(self) -> bool:
        """The turn is committed before the VAD hears the person go on."""
        return self.taken_at < self.resumed_at


def trim(pcm: Pcm) -> Pcm:
    """The speech from its first to its last 10 ms over -30 dB of its loudest 10 ms."""
    hop = RATE // 100
    usable = pcm[: len(pcm) // hop * hop].astype(np.float64).reshape(-1, hop)
    rms = np.sqrt((usable**2).mean(axis=1))
    loud = np.nonzero(rms > rms.max() * 0.03)[0]
    return pcm[loud[0] * hop : (loud[-1] + 1) * hop].copy()


class Voices:
    """Piper (each take a fresh synthesis: Piper samples its timing and prosody, so two takes
    of a sentence differ) and espeak-ng's en-us and en-gb voices when espeak-ng is installed."""

    def __init__(self) -> None:
        self._piper = SpeechSynth()
        self.names = [f"piper joe take {take + 1}" for take in range(PIPER_TAKES)]
        self._espeak: dict[str, EspeakSynth] = {}
        if shutil.which("espeak-ng") is not None:
            self._espeak = {v: EspeakSynth(v) for v in ("en-us", "en-gb")}
            self.names += [f"espeak-ng {v}" for v in self._espeak]

    def say(self, voice: str, text: str) -> Pcm:
        if voice.startswith("piper"):
            # Past the fixture's cache: every take is synthesised anew.
            pcm, rate = SpeechSynth.say.__wrapped__(self._piper, text)
        else:
            pcm, rate = self._espeak[voice.split()[-1]].say(text)
        return trim(np.frombuffer(resample(pcm, rate, RATE), np.int16))


def corpus(voices: Voices) -> list[Utterance]:
    out: list[Utterance] = []
    for voice in voices.names:
        for text in COMPLETE:
            out.append(Utterance("complete", text, voice, [voices.say(voice, text)]))
        for text in INCOMPLETE:
            out.append(Utterance("incomplete", text, voice, [voices.say(voice, text)]))
        for prefix, filler in PAUSED:
            pieces = [voices.say(voice, prefix), voices.say(voice, filler)]
            out.append(Utterance("paused", f"{prefix}... {filler}...", voice, pieces))
    return out


def load_vad(min_silence_s: float = VAD_MIN_SILENCE_S) -> vad.VAD:
    """Silero as `VoiceModels.load` loads it, with the silence the audio model needs."""
    return silero.VAD.load(
        min_silence_duration=min_silence_s,
        min_speech_duration=0.05,
        prefix_padding_duration=0.3,
        sample_rate=RATE,
        force_cpu=True,
    )


async def vad_events(detector: vad.VAD, pcm: Pcm) -> list[vad.VADEvent]:
    """The VAD's events over `pcm`, fed in 20 ms frames as a room delivers them."""
    stream = detector.stream()
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        stream.push_frame(rtc.AudioFrame(pcm[i : i + FRAME].tobytes(), RATE, 1, FRAME))
    stream.end_input()
    events = [ev async for ev in stream]
    await stream.aclose()
    return events


def _marks(events: Sequence[vad.VADEvent], silence_ms: int) -> list[tuple[str, int]]:
    """The VAD's starts ("start") and ends ("end") of speech, and in between each point where
    `AudioRecognition` asks the turn detector ("ask"): a VAD window with `silence_ms` of
    silence while the VAD still counts the person as speaking, once per silence. Samples into
    the audio."""
    out: list[tuple[str, int]] = []
    speaking, pending = False, False
    for ev in events:
        if ev.type == vad.VADEventType.START_OF_SPEECH:
            speaking, pending = True, False
            out.append(("start", ev.samples_index))
        elif ev.type == vad.VADEventType.END_OF_SPEECH:
            speaking = False
            out.append(("end", ev.samples_index))
        elif ev.type == vad.VADEventType.INFERENCE_DONE:
            if ev.raw_accumulated_speech > 0:
                pending = False
            if speaking and not pending and ev.raw_accumulated_silence >= silence_ms / 1000:
                pending = True
                out.append(("ask", ev.samples_index))
    return out


def _next_start(marks: Sequence[tuple[str, int]], after: int) -> int | None:
    return next((at for i, (kind, at) in enumerate(marks) if i > after and kind == "start"), None)


def first_pause_in(
    events: Sequence[vad.VADEvent], silence_ms: int = MIN_SILENCE_DURATION_MS
) -> tuple[int | None, int | None]:
    """Where `AudioRecognition` first asks the turn detector (after `silence_ms`), and where
    the VAD next reports a start of speech after it (the moment the framework cancels its wait
    for the end of the turn); samples into the audio, None where it does not happen."""
    marks = _marks(events, silence_ms)
    first = next((i for i, (kind, _) in enumerate(marks) if kind == "ask"), None)
    if first is None:
        return None, None
    return marks[first][1], _next_start(marks, first)


def decision_point_in(
    events: Sequence[vad.VADEvent], silence_ms: int = MIN_SILENCE_DURATION_MS
) -> int | None:
    """Where `AudioRecognition` would last ask the turn detector (samples into the audio)."""
    return next((at for kind, at in reversed(_marks(events, silence_ms)) if kind == "ask"), None)


def clause_pauses_in(events: Sequence[vad.VADEvent], silence_ms: int) -> list[tuple[int, int, int]]:
    """Each end of speech the VAD reports before the person goes on: where `AudioRecognition`
    last asked the turn detector in that silence (after `silence_ms`), where the VAD ended
    speech, and where it next reported a start of speech (samples into the audio)."""
    marks = _marks(events, silence_ms)
    out: list[tuple[int, int, int]] = []
    asked: int | None = None
    for i, (kind, at) in enumerate(marks):
        if kind == "ask":
            asked = at
        elif kind == "end":
            resumed = _next_start(marks, i)
            if asked is not None and resumed is not None:
                out.append((asked, at, resumed))
            asked = None
    return out


async def decision_point(
    detector: vad.VAD, pcm: Pcm, silence_ms: int = MIN_SILENCE_DURATION_MS
) -> int | None:
    """`decision_point_in` over the VAD's events for `pcm`."""
    return decision_point_in(await vad_events(detector, pcm), silence_ms)


class SmartTurn:
    """Smart Turn v3.2 from a pipecat-ai wheel: 8 s of 16 kHz audio (the end of the turn,
    zero-padded in front), Whisper-style log-mel features, an ONNX classifier."""

    N_FFT, HOP, N_MELS, SECONDS = 400, 160, 80, 8

    def __init__(self, wheel: Path) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        with zipfile.ZipFile(wheel) as zf:
            model = zf.read("pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx")
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1  # as pipecat's LocalSmartTurnAnalyzerV3 defaults
        self._session = onnxruntime.InferenceSession(model, sess_options=options)
        self._mel = self._filterbank()
        self._window = np.hanning(self.N_FFT + 1)[:-1]

    def _filterbank(self) -> npt.NDArray[np.float64]:
        def to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            mel = 3.0 * f / 200.0
            log = f >= 1000.0
            mel[log] = 15.0 + np.log(f[log] / 1000.0) * (27.0 / np.log(6.4))
            return mel

        def to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            f = 200.0 * m / 3.0
            log = m >= 15.0
            f[log] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (m[log] - 15.0))
            return f

        lo, hi = to_mel(np.array([0.0, RATE / 2]))
        edges = to_hz(np.linspace(float(lo), float(hi), self.N_MELS + 2))
        bins = np.linspace(0, RATE // 2, self.N_FFT // 2 + 1)
        slopes = edges[None, :] - bins[:, None]
        width = np.diff(edges)
        tri = np.maximum(0.0, np.minimum(-slopes[:, :-2] / width[:-1], slopes[:, 2:] / width[1:]))
        tri *= (2.0 / (edges[2:] - edges[:-2]))[None, :]
        return tri

    def features(self, pcm: Pcm) -> npt.NDArray[np.float32]:
        n = RATE * self.SECONDS
        x = pcm[-n:].astype(np.float32) / 32768.0
        x = np.pad(x, (n - len(x), 0))
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        padded = np.pad(x.astype(np.float64), (self.N_FFT // 2, self.N_FFT // 2), mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.N_FFT)[:: self.HOP]
        power = np.abs(np.fft.rfft(frames * self._window, axis=-1)) ** 2
        log = np.log10(np.maximum(1e-10, power @ self._mel)).T[:, :-1]
        log = np.maximum(log, log.max() - 8.0)
        features: npt.NDArray[np.float32] = ((log + 4.0) / 4.0).astype(np.float32)
        return features

    def predict(self, pcm: Pcm) -> float:
        out = self._session.run(None, {"input_features": self.features(pcm)[None]})
        return float(np.asarray(out[0]).reshape(-1)[0])


def load_average() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


@dataclass
class Collected:
    utterances: list[Utterance]
    transcripts: list[str]
    results: list[Scored]
    times: dict[str, list[float]]
    voices: list[str]
    loads: list[list[str]]
    undecided: int
    clauses: list[ClausePause]
    clause_utterances: int


async def collect(smart_turn_wheel: Path | None = None) -> Collected:
    loads = [load_average()]
    voices = Voices()
    utterances = corpus(voices)
    detector = load_vad()
    whisper = WhisperEngine(WhisperOptions(model_dir=bundled_model_dir()))
    init_eot()
    eot = EOT()
    audio_models: dict[str, Callable[[Pcm], float]] = {
        "v1-mini": lambda pcm: eot.predict(np.ascontiguousarray(pcm[-EOT_MAX_SAMPLES:]))
    }
    if smart_turn_wheel is not None:
        audio_models["smart-turn-v3.2"] = SmartTurn(smart_turn_wheel).predict
    times: dict[str, list[float]] = {name: [] for name in [*audio_models, EARLY, "text rule"]}
    # Each spoken piece is recognised on its own, as the worker's VAD-cut utterances are.
    transcripts = []
    first_pieces = []
    for u in utterances:
        heard = [await whisper.transcribe(p.astype(np.float32) / 32768.0) for p in u.pieces]
        transcripts.append(" ".join(t for t in heard if t))
        first_pieces.append(heard[0])

    clauses, clause_utterances = await collect_clauses(voices, whisper, audio_models["v1-mini"])
    whisper.close()

    results: list[Scored] = []
    undecided = 0
    for ci, (condition, noise) in enumerate(CONDITIONS.items()):
        for i, u in enumerate(utterances):
            pcm = u.audio(noise, seed=i)
            events = await vad_events(detector, pcm)
            at = decision_point_in(events)
            if at is None:
                undecided += 1
                continue
            row = Scored(u, condition, at, said=transcripts[i])
            if u.kind == "paused":
                row.first_at, row.resumed_at = first_pause_in(events, SHIPPED_ASK_MS)
                if row.first_at is not None:
                    row.first_said = first_pieces[i]
                    row.first_score = audio_models["v1-mini"](pcm[: row.first_at])
            # Interleaved, in a rotating order, so load spikes spread over every candidate.
            names = list(audio_models)
            k = (i + ci) % len(names)
            for name in names[k:] + names[:k]:
                started = time.perf_counter()
                row.scores[name] = audio_models[name](pcm[:at])
                times[name].append(time.perf_counter() - started)
            started = time.perf_counter()
            unfinished = turn_unfinished(transcripts[i])
            times["text rule"].append(time.perf_counter() - started)
            row.scores["text rule"] = 0.0 if unfinished else 1.0
            row.scores["text rule on the written text"] = (
                0.0 if transcript_unfinished(u.text) else 1.0
            )
            early_at = decision_point_in(events, ASKED_AT_MS[EARLY])
            if early_at is not None:
                started = time.perf_counter()
                row.scores[EARLY] = audio_models["v1-mini"](pcm[:early_at])
                times[EARLY].append(time.perf_counter() - started)
            else:
                row.scores[EARLY] = 0.0  # never asked: the turn waits, as "not done" would
            asks = transcript_asks(transcripts[i])
            for name in [*audio_models, EARLY]:
                row.scores[f"{name} + text rule"] = 0.0 if unfinished else row.scores[name]
                row.scores[f"{name} + text rule + question"] = (
                    1.0 if asks else row.scores[f"{name} + text rule"]
                )
            results.append(row)
    loads.append(load_average())
    return Collected(
        utterances,
        transcripts,
        results,
        times,
        voices.names,
        loads,
        undecided,
        clauses,
        clause_utterances,
    )


async def collect_clauses(
    voices: Voices, whisper: WhisperEngine, model: Callable[[Pcm], float]
) -> tuple[list[ClausePause], int]:
    """The ends of speech at a comma in `CLAUSES`, at each of `CLAUSE_ASK_MS`, with the VAD's
    silence the worker loads for that point; and how many utterances were spoken."""
    names = [f"piper joe take {take + 1}" for take in range(CLAUSE_PIPER_TAKES)]
    names += [v for v in voices.names if not v.startswith("piper")]
    detectors = {ms: load_vad(vad_min_silence_s(options_at(ms))) for ms in CLAUSE_ASK_MS}
    out: list[ClausePause] = []
    for i, (text, voice) in enumerate((t, v) for t in CLAUSES for v in names):
        pcm = Utterance("complete", text, voice, [voices.say(voice, text)]).audio(NOISE_RMS, i)
        for ms, detector in detectors.items():
            for asked, ended, resumed in clause_pauses_in(await vad_events(detector, pcm), ms):
                said = await whisper.transcribe(pcm[:ended].astype(np.float32) / 32768.0)
                score = model(pcm[:asked])
                out.append(ClausePause(text, voice, ms, asked, ended, resumed, said, score))
    return out, len(CLAUSES) * len(names)


def wrong(rows: Sequence[Scored], candidate: str, threshold: float) -> dict[Kind, float]:
    """Per kind, the share called wrongly: not done for complete, done for the others."""
    out: dict[Kind, float] = {}
    for kind in KINDS:
        ps = [s.scores[candidate] for s in rows if s.utterance.kind == kind]
        calls = [p < threshold if kind == "complete" else p >= threshold for p in ps]
        out[kind] = sum(calls) / len(calls)
    return out


def auc(rows: Sequence[Scored], candidate: str, other: Kind) -> float:
    """P(a complete utterance scores over an `other` one): 0.5 is chance, 1.0 perfect."""
    done = [s.scores[candidate] for s in rows if s.utterance.kind == "complete"]
    not_done = [s.scores[candidate] for s in rows if s.utterance.kind == other]
    pairs = [float(d > n) + 0.5 * float(d == n) for d in done for n in not_done]
    return sum(pairs) / len(pairs)


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def choose(rows: Sequence[Scored], candidate: str) -> float:
    """The highest threshold (fewest cut-offs) at which at most `FALSE_WAIT_BUDGET` of the
    complete sentences wait max_delay."""
    ok = [t for t in THRESHOLDS if wrong(rows, candidate, t)["complete"] <= FALSE_WAIT_BUDGET]
    return max(ok) if ok else min(THRESHOLDS)


def mean_end_s(not_done: float, done_delay_s: float) -> float:
    """Mean end of turn after the last speech for complete sentences."""
    return done_delay_s + not_done * (MAX_DELAY_S - done_delay_s)


def report(c: Collected) -> str:
    audio = [name for name in c.times if name != "text rule"]
    combined = [f"{name} + text rule{q}" for q in ("", " + question") for name in audio]
    n = {k: sum(1 for u in c.utterances if u.kind == k) for k in KINDS}
    inference = {name: Stats.of(values) for name, values in c.times.items()}
    # "Done" still waits for the VAD's silence and for the prediction asked at 200 ms.
    done_delay = {
        name: max(
            (ASKED_AT_MS.get(name, MIN_SILENCE_DURATION_MS) + 50) / 1000,
            ASKED_AT_MS.get(name, MIN_SILENCE_DURATION_MS) / 1000 + inference[name].p50,
        )
        for name in audio
    }
    chosen = {name: choose(c.results, name) for name in [*audio, *combined]}
    lines = [
        section_header(
            "End of turn",
            'uv run --frozen python -c "from tests.bench import turn; print(turn.main())"',
        ),
        f"Voices: {', '.join(c.voices)}. Utterances: {n['complete']} complete, "
        f"{n['incomplete']} incomplete, {n['paused']} paused, each scored with a noise floor "
        f"(~-60 dBFS) and on digital silence, at the point where LiveKit asks the model "
        f"(Silero VAD, {MIN_SILENCE_DURATION_MS} ms of silence after the last speech). "
        f"Load average before / after: {' '.join(c.loads[0])} / {' '.join(c.loads[-1])}.",
        "",
        "### Inference time on this CPU (one call; candidates interleaved)",
        "",
        "| candidate | p50 ms | p95 ms | n |",
        "|---|---|---|---|",
    ]
    for name, s in inference.items():
        lines.append(f"| {name} | {1000 * s.p50:.2f} | {1000 * s.p95:.2f} | {s.n} |")
    lines += [
        "",
        "The text rule reads the transcript the worker has anyway; Whisper's time is not in it.",
        "",
        "### How well each candidate separates the kinds (AUC; 0.5 is chance)",
        "",
        "| candidate | condition | complete vs incomplete | complete vs paused |",
        "|---|---|---|---|",
    ]
    for name in [*audio, *combined]:
        for condition in CONDITIONS:
            rows = [s for s in c.results if s.condition == condition]
            lines.append(
                f"| {name} | {condition} | {auc(rows, name, 'incomplete'):.2f} "
                f"| {auc(rows, name, 'paused'):.2f} |"
            )
    lines += [
        "",
        "### Wrong calls by threshold (both conditions together)",
        "",
        "complete called not done (waits max_delay) / incomplete called done / paused called "
        "done (the last two cut the person off), and the mean end of turn of complete "
        f"sentences after their last word: max({VAD_MIN_SILENCE_S:g} s of VAD silence, 0.2 s "
        f"+ inference p50) when the model says done, {MAX_DELAY_S:g} s when not (the timer "
        f"it replaces: {OLD_END_OF_TURN_S:g} s).",
        "",
        "| threshold | " + " | ".join([*audio, *combined]) + " |",
        "|---|" + "---|" * (len(audio) + len(combined)),
    ]
    for t in THRESHOLDS:
        cells = []
        for name in [*audio, *combined]:
            r = wrong(c.results, name, t)
            mean = mean_end_s(r["complete"], done_delay[name.split(" + ")[0]])
            cells.append(
                f"{pct(r['complete'])} / {pct(r['incomplete'])} / {pct(r['paused'])} ({mean:.2f} s)"
            )
        lines.append(f"| {t:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Threshold rule: the highest (fewest cut-offs) at which at most "
        f"{pct(FALSE_WAIT_BUDGET)} of complete sentences wait max_delay: "
        + ", ".join(f"{k} {v:g}" for k, v in chosen.items())
        + ".",
        "",
    ]
    for condition in CONDITIONS:
        rows = [s for s in c.results if s.condition == condition]
        lines += [
            f"### Wrong calls, {condition}",
            "",
            "| candidate | threshold | complete → not done | incomplete → done | paused → done |",
            "|---|---|---|---|---|",
        ]
        for name in c.results[0].scores:
            picks = {chosen.get(name, 0.5)}
            if name.startswith("v1-mini"):
                picks.add(V1_MINI_DEFAULT)
            for t in sorted(picks):
                r = wrong(rows, name, t)
                lines.append(
                    f"| {name} | {t:g} | {pct(r['complete'])} | {pct(r['incomplete'])} "
                    f"| {pct(r['paused'])} |"
                )
        lines.append("")
    pick = chosen["v1-mini + text rule"]
    lines += [
        f"### v1-mini + text rule by voice (threshold {pick:g})",
        "",
        "| voice | condition | complete → not done | incomplete → done | paused → done |",
        "|---|---|---|---|---|",
    ]
    for voice in c.voices:
        for condition in CONDITIONS:
            rows = [s for s in c.results if s.utterance.voice == voice and s.condition == condition]
            r = wrong(rows, "v1-mini + text rule", pick)
            lines.append(
                f"| {voice} | {condition} | {pct(r['complete'])} | {pct(r['incomplete'])} "
                f"| {pct(r['paused'])} |"
            )
    if UNSURE is not None:
        lines += ["", *unsure_report(c.results, UNSURE)]
    lines += ["", *clause_report(c.clauses, c.clause_utterances)]
    misses = [
        f'- {u.kind}: "{u.text}" ({u.voice}) heard as "{c.transcripts[i]}"'
        for i, u in enumerate(c.utterances)
        if (u.kind == "complete") == turn_unfinished(c.transcripts[i])
    ]
    lines += ["", "### Text rule misses (on Whisper's transcript)", "", *misses]
    if c.undecided:
        lines.append(f"\n{c.undecided} utterance(s) never reached a decision point (left out).")
    return "\n".join(lines) + "\n"


def wait_s(
    words: str,
    probability: float,
    unsure: UnsureWait | None,
    *,
    threshold: float = SHIPPED_THRESHOLD,
    done_s: float = SHIPPED_VAD_SILENCE_S,
) -> float:
    """How long after the last speech the shipped rule (or the same rule with another
    threshold and VAD silence, `done_s`) answers `words` scored `probability`."""
    if answers_at_once(words, probability, threshold, unsure):
        return done_s
    if verdict(words, probability, threshold, unsure) is Verdict.SHORTER:
        assert unsure is not None
        return unsure.delay_s
    return MAX_DELAY_S


def _spoken(pauses: Sequence[ClausePause]) -> int:
    """How many utterances the pauses are in (a take may pause at more than one comma)."""
    return len({(p.text, p.voice) for p in pauses})


def clause_report(pauses: Sequence[ClausePause], utterances: int) -> list[str]:
    """How often a sentence's own pause at a comma ends speech, and the turn is taken there,
    at each ask point, each with its threshold, unsure bar and VAD silence."""
    per_sentence = utterances // len(CLAUSES)
    out = [
        "### Sentences with a pause at a comma",
        "",
        f"{len(CLAUSES)} sentences with a comma, synthesised whole in {per_sentence} takes each "
        f"({CLAUSE_PIPER_TAKES} Piper, the rest espeak-ng), with the noise floor: "
        f"{utterances} utterances. Where the voice pauses at the comma long enough, the VAD "
        "ends speech there; the rule of the ask point then decides on Whisper's words up to "
        "that point and v1-mini's score. Taken: the turn is committed before the VAD hears the "
        f"person go on. Heard: they go on more than {HEARD_AFTER_COMMIT_S:g} s after the "
        "commit, by when a preemptive answer's first audio reaches them; the agent then talks "
        "into their sentence, which the barge-in stops and the rest becomes a turn of its own. "
        "Taken but not heard, the unheard reply is dropped and the brain is asked about the "
        "whole sentence (`last_user_message`).",
        "",
        "| asked after | VAD silence | speech ended at the comma | turn taken there "
        "| answer heard there | person went on after the last speech: median (range) |",
        "|---|---|---|---|---|---|",
    ]
    for ms in CLAUSE_ASK_MS:
        rows = [p for p in pauses if p.ask_ms == ms]
        taken = [p for p in rows if p.taken]
        heard = [p for p in taken if p.resumed_at - p.taken_at > HEARD_AFTER_COMMIT_S * RATE]
        gaps = sorted((p.resumed_at - p.asked_at) / RATE + ms / 1000 for p in rows)
        silence = vad_min_silence_s(options_at(ms))
        spread = f"{gaps[len(gaps) // 2]:.2f} s ({gaps[0]:.2f}-{gaps[-1]:.2f})" if gaps else "-"
        out.append(
            f"| {ms} ms | {silence:g} s "
            f"| {_spoken(rows)} of {utterances} | {_spoken(taken)} | {_spoken(heard)} "
            f"| {spread} |"
        )
    for ms in CLAUSE_ASK_MS:
        said = sorted({f'"{p.said}"' for p in pauses if p.ask_ms == ms and p.taken})
        if said:
            out += ["", f"Taken at the comma, asked after {ms} ms: {', '.join(said)}."]
    return out


def unsure_report(rows: Sequence[Scored], unsure: UnsureWait) -> list[str]:
    """The shipped rule with and without the shorter wait for unsure scores: how long
    complete sentences wait, how many incomplete ones are answered (at once, or after the
    shorter wait should the person pause that long), whether a paused utterance's filler
    comes within the wait at its first pause, and how many utterances wait less after their
    filler."""
    threshold, delay = SHIPPED_THRESHOLD, unsure.delay_s
    variants = {"without": None, "with": unsure}
    by_kind = {k: [r for r in rows if r.utterance.kind == k] for k in KINDS}
    complete, incomplete, paused = by_kind["complete"], by_kind["incomplete"], by_kind["paused"]
    out = [
        f"### The shorter wait for unsure scores ({SHIPPED_MODEL} + text rule + question, "
        f"threshold {threshold:g}: the shipped rule)",
        "",
        f"Words that can end a sentence, closed by Whisper (or a short reply on its own), "
        f"scored at or over {unsure.threshold:g} and under {threshold:g}, wait {delay:g} s "
        f"after the last speech instead of {MAX_DELAY_S:g} s. An incomplete utterance given "
        "the shorter wait is answered if the person pauses there longer than it. Paused "
        f"utterances are judged twice: in their {PAUSE_S:g} s pause before the filler (cut "
        "when the rule answers at once, or when the VAD reports the filler after the shorter "
        "wait ends: audio time, counted as the worker counts it, from where the model is asked "
        f"less {unsure.asked_after_s:g} s), and after the filler, where the shorter wait only "
        "shortens the pause the person may take before going on.",
        "",
        "| variant | complete: at once / shorter wait / max wait | mean end of turn, complete "
        "| incomplete: at once / shorter wait "
        f"| paused, in the {PAUSE_S:g} s pause: cut at once / cut by the shorter wait "
        "| paused, after the filler: shorter wait |",
        "|---|---|---|---|---|---|",
    ]
    for name, variant in variants.items():
        waits = [wait_s(r.said, r.scores[SHIPPED_MODEL], variant) for r in complete]
        answered = [wait_s(r.said, r.scores[SHIPPED_MODEL], variant) for r in incomplete]
        cut_now = cut_unsure = 0
        for r in paused:
            if r.first_score is None or r.first_at is None:
                continue
            first = wait_s(r.first_said, r.first_score, variant)
            if first == SHIPPED_VAD_SILENCE_S:
                cut_now += 1
            elif first == delay:
                deadline = r.first_at + round((delay - unsure.asked_after_s) * RATE)
                cut_unsure += r.resumed_at is None or r.resumed_at > deadline
        after_filler = sum(
            wait_s(r.said, r.scores[SHIPPED_MODEL], variant) == delay for r in paused
        )
        shares = [sum(w == x for w in waits) / len(waits) for x in (SHIPPED_VAD_SILENCE_S, delay)]
        shares.append(sum(w == MAX_DELAY_S for w in waits) / len(waits))
        out.append(
            f"| {name} | {' / '.join(pct(x) for x in shares)} | {sum(waits) / len(waits):.2f} s "
            f"| {sum(w == SHIPPED_VAD_SILENCE_S for w in answered)} / "
            f"{sum(w == delay for w in answered)} of {len(incomplete)} "
            f"| {cut_now} / {cut_unsure} of {len(paused)} | {after_filler} |"
        )
    replies = [
        f'"{r.utterance.text}" ({r.utterance.voice}, {r.condition}): "{r.said}", P '
        f"{r.scores[SHIPPED_MODEL]:.2f}, {wait_s(r.said, r.scores[SHIPPED_MODEL], unsure):g} s"
        for r in complete
        if short_reply(r.said) and not transcript_closed(r.said)
    ]
    if replies:
        out += ["", "Short replies Whisper left open (its words, v1-mini's score, the wait):", ""]
        out += [f"- {line}" for line in replies]
    cut = sorted(
        {
            f'"{r.utterance.text}" ({r.utterance.voice}), heard as "{r.first_said}"'
            for r in paused
            if r.first_score is not None
            and wait_s(r.first_said, r.first_score, unsure) == SHIPPED_VAD_SILENCE_S
        }
    )
    if cut:
        out += ["", "Cut at once in the pause before the filler (either condition):", ""]
        out += [f"- {line}" for line in cut]
    margins = sorted(
        (r.resumed_at - r.first_at) / RATE + unsure.asked_after_s
        for r in paused
        if r.resumed_at is not None and r.first_at is not None
    )
    if margins:
        shorter = sum(
            wait_s(r.first_said, r.first_score, unsure) == delay
            for r in paused
            if r.first_score is not None
        )
        out += [
            "",
            f"The filler after the {PAUSE_S:g} s pause reached the VAD {margins[0]:.2f}-"
            f"{margins[-1]:.2f} s after the last speech (median "
            f"{margins[len(margins) // 2]:.2f} s; n {len(margins)}). Given the shorter wait at "
            f"the first pause: {shorter} of {len(paused)}.",
        ]
    return out


def main() -> str:
    wheel = os.environ.get("ARC_BENCH_SMART_TURN_WHEEL")
    body = report(asyncio.run(collect(Path(wheel) if wheel else None)))
    write_section("turn", body)
    return body
