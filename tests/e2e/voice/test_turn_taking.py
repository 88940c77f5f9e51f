"""Turn taking on the real local mesh (issue 9): the person is heard while they speak, a
hesitation does not end their turn, a guess the agent started on is thrown away without a
trace, and only words, not a cough, stop the agent."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime

import numpy as np
import pytest
from arc_voice.caller import AUDIBLE_DB, RoomCaller, Utterance
from arc_voice.conversation import Conversation
from arc_voice.session_state import State

from tests.fixtures.brain import RunningBrain
from tests.fixtures.speakers import Speaker
from tests.fixtures.voice import QuietVoice, SpeechSynth, Talk, VoiceFactory
from tests.fixtures.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _stored_user_turns(brain: RunningBrain, session: str, within_s: float) -> list[str]:
    """The person's turns the brain stored, once no more arrive."""
    lines: list[str] = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        lines = [
            line.content for line in await brain.brain.transcript(session) if line.role == "user"
        ]
        await asyncio.sleep(0.1)
    return lines


async def test_heard_while_speaking_and_answered_right(
    quiet_voice: QuietVoice, talk: Talk, speech: SpeechSynth
) -> None:
    caller, conversation = await talk("dora")
    _, brain = quiet_voice
    pcm, rate = speech.say("Could you please tell me what time it is right now, if you know?")
    spoken = await (await caller.say(pcm, rate))
    await caller.wait_audible(spoken.speech_ended_at, within_s=30)
    await caller.wait_quiet(0.8, within_s=60)

    finals = [at for at, final, text in conversation.log.heard if final and text]
    interims = [at for at, final, text in conversation.log.heard if not final and text]
    assert finals, conversation.log.heard
    # Recognition ran while she spoke: words came back before she had finished.
    assert interims and interims[0] < finals[0], conversation.log.heard
    assert any(at < spoken.speech_ended_at for at in interims), conversation.log.heard
    kept = next(t for t in conversation.brain.turns if t.verdict)
    assert "time" in kept.user_text.lower()
    now = datetime.now().astimezone()
    assert kept.answer.startswith("It's ") and now.strftime("%p") in kept.answer, kept.answer
    assert await _stored_user_turns(brain, conversation.session_id, 1.0) == [kept.user_text]


async def test_a_hesitation_is_one_turn_and_the_guess_is_not_stored(
    quiet_voice: QuietVoice, talk: Talk, speech: SpeechSynth
) -> None:
    caller, conversation = await talk("erin")
    _, brain = quiet_voice
    # One fixed take: Piper's random prosody sometimes puts a second pause of its own at the
    # comma, long enough to end a turn there (the benchmark's hesitation figures count how
    # often such pauses cut a person off); this test holds the 400 ms one.
    # The first half ends on "the": Whisper often drops a trailing "um" (a CI run was answered
    # in the pause when "I would like to know" still read as finished; the word rule holds it
    # since 2026-12-07), never a word.
    pcm, rate = Speaker("piper", speech).say_with_pause(
        "I would like to know the, um", "time right now.", pause_s=0.4, plain=True
    )
    spoken = await (await caller.say(pcm, rate))
    first = await caller.wait_audible(spoken.speech_started_at, within_s=30)
    await caller.wait_quiet(0.8, within_s=60)

    # The agent did not speak into the pause, and answered the whole sentence: either the
    # turn waited out the pause, or the first half's reply (never heard) was dropped and the
    # brain was asked about both halves together.
    # What the brain was asked tells a rule that failed (it answered "...know the") from
    # Whisper that dropped the trailing word under load (then "I would like to know." is
    # rightly finished): a CI run answered 0.5 s into the pause and left no other trace.
    asked = [(t.user_text, t.verdict) for t in conversation.brain.turns]
    assert first > spoken.speech_ended_at, (first - spoken.speech_ended_at, asked)
    [kept] = [t for t in conversation.brain.turns if t.verdict]
    # Both halves, by words Whisper keeps: it has written the second half's "time" as "I'm"
    # ("I would like to know the um... I'm right now.", a run of 2026-12-07), and kept
    # "right now" in every run read.
    said = kept.user_text.lower()
    assert "know" in said and "right now" in said, kept.user_text
    # Answered, but not necessarily with the time: Whisper sometimes writes the "um" as words
    # ("I would like to know that... I am Time right now.", 2 runs of 11 with the model asked
    # after 100 ms), which the skills router reads as no skill it knows; that is the router's
    # reading of Whisper's words, not the turn-taking this test is about.
    assert kept.completed and kept.answer.strip(), kept
    # Whatever the brain started on the first half (a preemptive guess, a reply cut off
    # unheard) was discarded: only the whole sentence is in the history.
    guesses = [t for t in conversation.brain.turns if t is not kept]
    assert all(t.verdict is False for t in guesses)
    assert conversation.log.discarded_turns == len(guesses)
    assert await _stored_user_turns(brain, conversation.session_id, 1.5) == [kept.user_text]


def _story(conversation: Conversation, since: float) -> str:
    """What the conversation went through, in seconds from `since`: for a failure's message."""
    states = [(round(at - since, 2), str(state)) for at, state in conversation.state.history]
    heard = [(round(at - since, 2), final, text) for at, final, text in conversation.log.heard]
    asked = [(t.user_text, t.answer[:60], t.verdict) for t in conversation.brain.turns]
    return f"states {states}; heard {heard}; asked {asked}"


def _cough(rate: int = 16000) -> tuple[bytes, int]:
    rng = np.random.default_rng(11)
    n = int(rate * 0.25)
    burst = rng.normal(0, 0.3, n) * np.sin(np.linspace(0, np.pi, n)) ** 2
    return (np.clip(burst, -1, 1) * 20000).astype(np.int16).tobytes(), rate


def _audible_after(caller: RoomCaller, sound: Utterance) -> list[float]:
    """When the agent was heard 0.3-3 s after `sound` went out: an answer that resumed."""
    return [
        h.at
        for h in caller.heard
        if sound.ended_at + 0.3 < h.at < sound.ended_at + 3.0 and h.level > AUDIBLE_DB
    ]


async def _answer_under_way(caller: RoomCaller, pcm: bytes, rate: int) -> None:
    """Ask, and return once the answer is heard."""
    spoken = await (await caller.say(pcm, rate))
    await caller.wait_audible(spoken.speech_ended_at, within_s=30)


async def _a_cough_does_not_stop_it(
    caller: RoomCaller, conversation: Conversation, listen_s: float
) -> None:
    cough = await (await caller.say(*_cough()))
    await asyncio.sleep(listen_s)
    assert _audible_after(caller, cough), (
        "the agent stopped for good at a cough",
        _story(conversation, cough.speech_started_at),
    )
    assert not any(t.turn.interrupted for t in conversation.log.turns), _story(
        conversation, cough.speech_started_at
    )


async def _words_end_it(
    caller: RoomCaller, conversation: Conversation, speech: SpeechSynth
) -> None:
    # One sentence, one fixed take: with a full stop inside it, the turn may end there and
    # the agent answer the first half while the person is still talking (seen under load),
    # which is the end-of-turn question, not the barge-in one this asks.
    words, rate = speech.say_plain("Please tell me the date instead.")
    interruption = await (await caller.say(words, rate))
    await caller.wait_quiet(0.8, within_s=60)
    deadline = time.monotonic() + 10
    while not any(t.turn.interrupted for t in conversation.log.turns):
        assert time.monotonic() < deadline, "words over the answer did not interrupt it"
        await asyncio.sleep(0.05)
    late = [
        h.at - interruption.speech_started_at
        for h in caller.heard
        if interruption.speech_started_at < h.at < interruption.speech_ended_at
        and h.level > AUDIBLE_DB
    ]
    assert max(late, default=0.0) < 0.5, max(late)


async def test_a_cough_does_not_end_the_answer_but_words_do(
    talk: Talk, speech: SpeechSynth
) -> None:
    caller, conversation = await talk("fay")
    # A first answer spends LiveKit's AEC warm-up (the first 3 s the agent speaks, during
    # which no sound can interrupt it): the cough below must come when one could.
    await _answer_under_way(caller, *speech.say_plain("What time is it?"))
    await caller.wait_quiet(0.8, within_s=60)
    await _answer_under_way(caller, *speech.say_plain("What can you do?"))
    await asyncio.sleep(1.0)
    await _a_cough_does_not_stop_it(caller, conversation, listen_s=3.0)

    # "Yeah" over the answer means "go on": the answer resumes and it is not a turn. (Piper
    # says "mm-hmm" so that Whisper tiny.en hears "In my mom.": not a fair test of the rule.)
    turns_before = len(conversation.log.transcripts)
    backchannel = await (await caller.say(*speech.say("Yeah.")))
    await asyncio.sleep(3.0)
    assert _audible_after(caller, backchannel), "the agent stopped for good at a backchannel"
    assert len(conversation.log.transcripts) == turns_before, conversation.log.transcripts

    await _words_end_it(caller, conversation, speech)


async def test_with_pause_on_loudness_a_cough_pauses_the_answer_and_words_end_it(
    voice_factory: VoiceFactory, voice_brain: RunningBrain, speech: SpeechSynth
) -> None:
    """With the early pause on (`pause_on_loud_s`): a cough pauses the agent at once, and the
    answer goes on once the VAD has heard past the cough without confirming speech; words
    over the answer are confirmed, and end it. Both over the answer after LiveKit's AEC
    warm-up (the first 3 s the agent speaks), during which nothing pauses it."""
    harness = await voice_factory(greeting="", barge_in={"pause_on_loud_s": 0.04})
    caller, conversation = await harness.talk_to("gus")
    # A fixed take: a random one Whisper mishears may get a short answer that is over by
    # the time the warm-up is (a CI run found no loud pause at all and left no other trace).
    await _answer_under_way(caller, *speech.say_plain("What can you do?"))
    deadline = time.monotonic() + 10
    while not conversation.warmed_up:
        assert time.monotonic() < deadline, "the agent's AEC warm-up never ended"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    cough_at = time.monotonic()
    assert conversation.state.state is State.SPEAKING, _story(conversation, cough_at)
    await _a_cough_does_not_stop_it(caller, conversation, listen_s=2.0)
    # A pause is logged once Silero has judged 0.5 s of the audio after the sound, which on a
    # loaded box runs seconds behind the gate (the worker waits up to 3.5 s of wall time for
    # it): asserted at once, a CI run found none logged yet (2026-12-07, and once before).
    with contextlib.suppress(AssertionError):
        await wait_until(lambda: conversation.log.loud_pauses, timeout_s=5.0, interval_s=0.05)
    assert [resumed for _, resumed in conversation.log.loud_pauses] == [True], (
        conversation.log.loud_pauses,
        _story(conversation, cough_at),
    )
    await _words_end_it(caller, conversation, speech)
    assert [resumed for _, resumed in conversation.log.loud_pauses][1:] == [False]
