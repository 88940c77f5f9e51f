"""Barge-in reaches LiveKit's room output under the wrapper the framework puts over it by
default (the transcript synchroniser) and drops the audio queued for the room with the
output's own bookkeeping. Real livekit-agents and LiveKit FFI objects; no server is needed
for an output that is not published yet."""

from __future__ import annotations

import numpy as np
import pytest
from arc_voice.barge_in import check_room_output, drop_queued_audio, room_output
from livekit import rtc
from livekit.agents.voice.room_io._output import _ParticipantAudioOutput
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

RATE = 24000


def _frame(seconds: float) -> rtc.AudioFrame:
    samples = round(RATE * seconds)
    tone = (np.sin(np.arange(samples) * 2 * np.pi * 440 / RATE) * 8000).astype(np.int16)
    return rtc.AudioFrame(tone.tobytes(), RATE, 1, samples)


async def test_the_room_output_is_found_under_the_transcript_synchroniser() -> None:
    room = rtc.Room()
    output = _ParticipantAudioOutput(
        room, sample_rate=RATE, num_channels=1, track_publish_options=rtc.TrackPublishOptions()
    )
    synced = TranscriptSynchronizer(next_in_chain_audio=output, next_in_chain_text=None)
    try:
        # What a room session's `session.output.audio` is: the synchroniser's output first.
        assert not hasattr(synced.audio_output, "_audio_source")
        assert room_output(synced.audio_output) is output
        check_room_output(synced.audio_output)  # raises where livekit-agents moved things

        # Audio the room output has handed to its source and not yet played.
        await output._audio_source.capture_frame(_frame(0.15))
        output._source_pushed_duration = 0.15  # what its playout task counts when it hands over
        queued = output._audio_source.queued_duration
        assert queued > 0.05

        dropped = drop_queued_audio(synced.audio_output)

        assert dropped == pytest.approx(queued, abs=0.02)
        assert output._audio_source.queued_duration == 0.0
        # Counted as discarded, so the position the framework reports as heard leaves it out.
        assert output._source_discarded_duration == pytest.approx(dropped)
        # Nothing queued: nothing more to drop, and the bookkeeping stays as it is.
        assert drop_queued_audio(synced.audio_output) == 0.0
        assert output._source_discarded_duration == pytest.approx(dropped)
    finally:
        await synced.aclose()
        await output._audio_source.aclose()


async def test_a_chain_without_a_room_output_fails_the_check() -> None:
    with pytest.raises(RuntimeError, match="livekit-agents changed"):
        check_room_output(None)
    assert drop_queued_audio(None) == 0.0


async def test_a_room_output_without_the_bookkeeping_fails_the_check() -> None:
    """What a livekit-agents that renamed the counters or changed `_report_run` would give."""

    class Renamed:
        next_in_chain = None

        def __init__(self) -> None:
            self._audio_source = rtc.AudioSource(RATE, 1)
            self._source_pushed_duration = 0.0

        def _report_run(self, *, offset: float, ended_at: float) -> None: ...

    output = Renamed()
    try:
        with pytest.raises(RuntimeError) as failed:
            check_room_output(output)  # type: ignore[arg-type]
        assert "_source_discarded_duration" in str(failed.value)
        assert "_report_run(offset, ended_at, resumes_at)" in str(failed.value)
    finally:
        await output._audio_source.aclose()
