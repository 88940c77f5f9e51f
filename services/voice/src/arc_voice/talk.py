"""`python -m arc_voice.talk IN.wav OUT.wav`: one turn through a real room, from a file.

Asks the running voice worker (`ARC_VOICE__HTTP_PORT`) to join the room, joins it as a
person, plays IN.wav as the microphone, and writes the agent's spoken reply to OUT.wav.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import uuid
import wave
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import httpx
import numpy as np
from pydantic import ValidationError

from arc_voice.caller import MIC_RATE, RoomCaller, participant_token
from arc_voice.latency import Breakdown, ReplyTiming, breakdown, describe
from arc_voice.room_agent import agent_track_name
from arc_voice.settings import VoiceSettings


class TalkError(Exception):
    pass


def read_wav(path: Path) -> tuple[bytes, int]:
    """16-bit PCM WAV as mono PCM and its rate."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise TalkError(f"{path}: only 16-bit PCM WAV is supported")
            frames = wav.readframes(wav.getnframes())
            channels, rate = wav.getnchannels(), wav.getframerate()
    except (wave.Error, EOFError) as exc:
        raise TalkError(f"{path}: not a WAV file" + (f" ({exc})" if str(exc) else "")) from exc
    except OSError as exc:
        raise TalkError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    samples = np.frombuffer(frames, np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if samples.size == 0:
        raise TalkError(f"{path}: no audio")
    return samples.tobytes(), rate


def turn_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The arguments the file clients (`talk`, `ws_client`) share: the WAV to say, where the
    reply goes and how long to wait for it."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    parser.add_argument("input", type=Path, help="16-bit PCM WAV to say")
    parser.add_argument("output", type=Path, help="where to write the agent's reply (WAV)")
    parser.add_argument("--reply-within", type=float, default=30.0, metavar="SECONDS")
    return parser


def run_client(name: str, turn: Callable[[], int]) -> int:
    """A file client's body, its failures one line each: bad input or settings exit 2 (before
    anything is started, as the body reads them first), no answer in time exit 1."""
    try:
        return turn()
    except TalkError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        print(f"{name}: invalid settings: {problems}", file=sys.stderr)
        return 2
    except TimeoutError as exc:
        detail = f" ({exc})" if str(exc) else ""
        print(f"{name}: the agent did not answer in time{detail}", file=sys.stderr)
        return 1


def write_wav(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)


async def talk(
    settings: VoiceSettings,
    speech: tuple[bytes, int],
    target: Path,
    *,
    room: str,
    identity: str,
    reply_within_s: float,
) -> Breakdown:
    """The reply's latency from the person's side: from the end of the speech in IN (its
    trailing silence is not counted) to the first audible frame of the reply, with the stages
    the worker recorded for that turn."""
    pcm, rate = speech
    options = settings.voice
    livekit = settings.livekit
    voice_url = f"http://{options.http_host}:{options.http_port}"
    auth = api_key_headers(settings)
    async with httpx.AsyncClient(timeout=30.0, headers=auth) as http:
        try:
            answer = await http.post(f"{voice_url}/rooms/{room}/agent")
        except httpx.HTTPError as exc:
            raise TalkError(f"the voice worker at {voice_url} is not reachable: {exc}") from exc
        if answer.status_code != 200:
            raise TalkError(f"the voice worker refused to join {room}: {answer.text}")
    token = participant_token(
        api_key=livekit.api_key,
        api_secret=livekit.api_secret.get_secret_value(),
        room=room,
        identity=identity,
    )
    caller = RoomCaller(livekit.url, token, agent_track=agent_track_name(identity))
    await caller.connect()
    try:
        await caller.wait_for_agent(within_s=30)
        if options.greeting:
            # Let the greeting finish so it is not taken for the reply.
            with contextlib.suppress(TimeoutError):
                await caller.wait_audible(0.0, within_s=10)
                await caller.wait_quiet(1.0, within_s=30)
        spoken = await (await caller.say(pcm, rate))
        first = await caller.wait_audible(spoken.speech_ended_at, within_s=reply_within_s)
        last = await caller.wait_quiet(1.5, within_s=120)
        write_wav(target, caller.audio_between(first - 0.1, last + 0.2), MIC_RATE)
        timing = await _latest_reply(voice_url, room, identity, auth)
    finally:
        await caller.aclose()
    return breakdown(timing, speech_ended_at=spoken.speech_ended_at, heard_at=first)


def api_key_headers(settings: VoiceSettings) -> dict[str, str]:
    """The worker's routes need its API key: the first of `ARC_HTTP__API_KEYS` (`make talk`
    passes the one `make run` made)."""
    if not settings.http.api_keys:
        raise TalkError("no API key: set ARC_HTTP__API_KEYS (`make talk` reads .arc's key)")
    return {"authorization": f"Bearer {settings.http.api_keys[0].get_secret_value()}"}


async def _latest_reply(
    voice_url: str, room: str, identity: str, auth: dict[str, str]
) -> ReplyTiming:
    """The worker's record of the reply just heard (it is written when the reply ends)."""
    async with httpx.AsyncClient(timeout=10.0, headers=auth) as http:
        for _ in range(50):
            answer = await http.get(f"{voice_url}/rooms/{room}/people/{identity}/replies")
            if answer.status_code == 307:
                # Under LiveKit dispatch another worker of the mesh serves the room. Followed
                # by hand: httpx drops the key on a redirect to another port, and the workers
                # share it.
                answer = await http.get(answer.headers["location"])
            replies = answer.json().get("replies", []) if answer.status_code == 200 else []
            if replies:
                return ReplyTiming.from_json(replies[-1])
            await asyncio.sleep(0.1)
    # The reply was heard; only the worker's side of the breakdown is missing.
    return ReplyTiming(
        turn_id="",
        user_stopped_at=None,
        transcription_delay_s=None,
        end_of_turn_delay_s=None,
        brain_first_delta_s=None,
        tts_first_chunk_s=None,
        first_audio_out_at=None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = turn_parser("arc_voice.talk", __doc__)
    parser.add_argument("--room", default=f"arc-talk-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--identity", default="talk-cli")
    args = parser.parse_args(argv)
    return run_client("talk", lambda: _talk(args))


def _talk(args: argparse.Namespace) -> int:
    # Bad input is refused before anything is started or connected.
    speech = read_wav(args.input)
    settings = VoiceSettings()
    result = asyncio.run(
        talk(
            settings,
            speech,
            args.output,
            room=args.room,
            identity=args.identity,
            reply_within_s=args.reply_within,
        )
    )
    print(
        f"reply written to {args.output} "
        f"(voice-to-voice {result.voice_to_voice_s * 1000:.0f} ms from the end of your speech)"
    )
    print(describe(result))
    return 0


def _exit_now(code: int) -> NoReturn:
    """Leave without interpreter teardown. The room is closed and the reply written by now,
    but the livekit rtc SDK's Rust runtime can panic ("panic in a function that cannot
    unwind", SIGABRT) while Python finalizes its handles, turning a good run into exit -6."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main())
