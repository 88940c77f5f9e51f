"""The voice worker's one typed settings object, built at start-up from `ARC_*` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from arc_common.settings import PostgresSettings, ServiceSettings
from pydantic import BaseModel, Field, SecretStr, model_validator

# LiveKit's well-known development keys (`livekit-server --dev`): anyone can sign tokens
# with them, so a worker refuses them unless told it talks to a throwaway dev server.
DEV_KEYS = ("devkey", "secret")


class LiveKitSettings(BaseModel):
    url: str = "ws://127.0.0.1:7880"
    api_key: str = DEV_KEYS[0]
    api_secret: SecretStr = SecretStr(DEV_KEYS[1])
    allow_dev_keys: bool = False

    @model_validator(mode="after")
    def _not_the_dev_keys(self) -> LiveKitSettings:
        livekit = self
        uses_dev = (
            livekit.api_key == DEV_KEYS[0] or livekit.api_secret.get_secret_value() == DEV_KEYS[1]
        )
        if uses_dev and not livekit.allow_dev_keys:
            raise ValueError(
                "the LiveKit development keys (devkey / secret) are refused: set "
                "ARC_LIVEKIT__API_KEY and ARC_LIVEKIT__API_SECRET (`make run` makes local "
                "ones), or ARC_LIVEKIT__ALLOW_DEV_KEYS=true for a throwaway dev server"
            )
        return self


class BargeInSettings(BaseModel):
    # Speech must rise this many dB over the adaptive noise floor to count as speech at all...
    margin_db: float = Field(default=9.0, ge=0.0, le=60.0)
    # ...and this many while the agent is speaking, so its echo and room noise do not cut it off.
    speaking_margin_db: float = Field(default=15.0, ge=0.0, le=60.0)
    # The floor is the quietest level heard over this window: speech has pauses, so it stays at
    # the room's background while steady noise (a fan) raises it within one window.
    floor_window_s: float = Field(default=3.0, ge=0.2, le=60.0)
    # The gate stays open this long after the last loud frame so word endings are kept.
    hangover_s: float = Field(default=0.35, ge=0.0, le=2.0)
    # Until one window has been heard the floor is at most this (dBFS, a quiet room): a session
    # that opens with speech has no background yet, and its quietest words would otherwise
    # become the floor and be gated away ("What can you do?" heard as "What can you").
    learning_ceiling_db: float = Field(default=-60.0, ge=-96.0, le=0.0)
    # Speech that long (VAD seconds) while the agent talks interrupts it.
    min_speech_s: float = Field(default=0.12, ge=0.0, le=2.0)
    # A sound over the gate's bar for this long while the agent talks pauses it at once (the
    # VAD needs ~0.3 s to confirm speech); unconfirmed within `confirm_within_s` of the audio
    # after it (audio the VAD has run over: it can lag on a loaded box), the answer goes on.
    # 0: only confirmed speech pauses the agent (the default until 2026-12-07: docs/voice.md,
    # "Barge-in and background noise").
    pause_on_loud_s: float = Field(default=0.04, ge=0.0, le=1.0)
    confirm_within_s: float = Field(default=0.5, gt=0.0, le=5.0)


class RecordingSettings(BaseModel):
    # Off unless asked for: people are recorded only where the operator chose it, and then
    # they are told (`notice`); `make run` asks for it on the local mesh. A room's metadata or
    # a socket's `start` can override it per session (docs/recording.md).
    enabled: bool = False
    # Where the per-session files go: a local folder (created at start-up).
    directory: Path = Path(".arc/recordings")
    # Recordings (files and rows) older than this are deleted; 0 keeps them for good.
    retention_days: float = Field(default=30.0, ge=0.0, le=3650.0)
    # Said (and shown) at the start of a recorded conversation; empty: shown only.
    notice: str = Field(default="This conversation is recorded.", max_length=500)


class DispatchSettings(BaseModel):
    # "direct": the worker joins rooms itself (start-up list, `POST /rooms/{room}/agent`, the
    # talk page's token); "livekit": it registers with the LiveKit server as an agent worker
    # and serves the rooms the server dispatches to it (docs/dispatch.md).
    mode: Literal["direct", "livekit"] = "direct"
    # The name explicit dispatch asks for (room configuration in a token, AgentDispatchService).
    # Empty: the worker registers unnamed, and LiveKit dispatches it to every new room.
    agent_name: str = Field(default="arc", max_length=128)
    # Conversations at once before the worker reports itself full and LiveKit dispatches
    # elsewhere: 2 per worker process kept voice to voice p95 under 1 s (docs/load.md).
    max_sessions: int = Field(default=2, ge=1, le=1000)
    # The LiveKit server's `agents.target_load` (its config; 0.7 unless set): a worker that
    # reports a load above it is offered no job, so the load reported stays under it until
    # the cap (docs/dispatch.md).
    server_target_load: float = Field(default=0.7, gt=0.0, le=1.0)


class VoiceOptions(BaseModel):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8083, ge=1, le=65535)
    # Rooms the worker joins at start-up; more join through `POST /rooms/{room}/agent` or
    # when the browser page asks for a token.
    rooms: list[str] = Field(default_factory=list)
    agent_identity: str = Field(default="arc-agent", min_length=1, max_length=128)
    greeting: str = Field(default="Hello! I'm Arc. How can I help?", max_length=2000)
    voice: str | None = None
    tts_sample_rate: Literal[16000, 22050, 24000, 48000] = 24000
    stt: Literal["whisper", "deepgram"] | None = None
    deepgram_api_key: SecretStr | None = None
    deepgram_base_url: str = "https://api.deepgram.com/v1/listen"
    whisper_model_dir: Path | None = None
    whisper_beam_size: int = Field(default=1, ge=1, le=10)
    # Whisper encodes only the audio it has (rounded up to `whisper_window_step_s`) instead of
    # a padded 30 s window; `whisper_full_window` brings the padded window back.
    whisper_full_window: bool = False
    # Decodes at once (a conversation has one in flight, and for a moment two when its
    # speculative final starts beside a running interim) and threads per decode.
    # Two of one thread answered two people who stopped at the same moment sooner than one
    # of two threads, and one person no slower (docs/voice.md, "Whisper's workers").
    whisper_workers: int = Field(default=2, ge=1, le=8)
    whisper_threads: int = Field(default=1, ge=1, le=16)
    # While the person speaks, the growing utterance is recognised again after this much new
    # speech (interim transcripts); 0 recognises only at the end of speech.
    stt_interim_interval_s: float = Field(default=0.3, ge=0.0, le=5.0)
    # Silence that makes the VAD call the end of speech. With turn_detection "model" at least
    # turn_model_after_silence_s + 0.05 s is used: the framework asks the model while the VAD
    # still hears speech, so a shorter VAD silence would end every turn before it is asked.
    vad_min_silence_s: float = Field(default=0.15, gt=0.0, le=3.0)
    # With turn_detection "model": ask LiveKit's end-of-turn model after this much silence
    # (LiveKit's own point, 0.2 s, unless set); the VAD ends speech 50 ms later. 0.1 answered
    # 73 ms sooner at the p50 in an A/B in the rooms on 2026-12-07 16:00 UTC (514 against 587
    # ms), but its 0.15 s of VAD silence ends speech in a pause at a comma: a room test split
    # "..., if you know?" into two turns (docs/voice.md, "Asking the model after 100 ms").
    # One value per process: it is LiveKit's module-wide constant.
    turn_model_after_silence_s: float = Field(default=0.2, ge=0.05, le=0.2)
    # "model": LiveKit's audio end-of-turn model plus a rule on the transcript decide between
    # the two delays below (docs/voice.md, "End of turn"); "vad": the plain silence timer.
    turn_detection: Literal["model", "vad"] = "model"
    # P(end of turn) under which the model says "not finished"; unset: chosen from
    # `make bench BENCH=turn` for where the model is asked, 0.25 after 100 ms of silence, 0.36
    # after 200 ms (LiveKit's own value for English).
    turn_unlikely_threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    endpointing_min_delay_s: float = Field(default=0.0, ge=0.0, le=5.0)
    # The longest the model can make the agent wait after the end of speech.
    endpointing_max_delay_s: float = Field(default=0.8, ge=0.0, le=10.0)
    # With turn_detection "model": words Whisper closed that can end a sentence, which the
    # audio model scores under the threshold but at or over `turn_unsure_threshold`, wait
    # this long after the last speech instead of the max delay (docs/voice.md, "Unsure: a
    # shorter wait"); 0: they wait the max delay. A 400 ms hesitation's next sound reaches
    # the VAD 0.32-0.48 s after the last speech, inside 0.55 s.
    endpointing_unsure_delay_s: float = Field(default=0.55, ge=0.0, le=10.0)
    # Unset: 0.15 when the model is asked after 100 ms, 0.2 at 200 ms (the turn bench's
    # scores are lower on less silence; about the same share of the threshold).
    turn_unsure_threshold: float | None = Field(default=None, ge=0.0, lt=1.0)
    # Start the brain (and the first TTS piece) on the transcript at the end of speech, before
    # the turn is confirmed; a guess that turns out wrong is cancelled and not stored.
    preemptive_generation: bool = True
    # A sound over the agent that turns out not to be words (a cough, "mm-hm") pauses it, and
    # it resumes after this long without a transcript; 0: such a sound stops it for good.
    false_interruption_timeout_s: float = Field(default=1.0, ge=0.0, le=10.0)
    brain_first_delta_timeout_s: float = Field(default=10.0, gt=0.0)
    brain_idle_timeout_s: float = Field(default=15.0, gt=0.0)
    # Said for the brain when its first words are late (0 s or an empty text: never), and
    # when it cannot answer at all (docs/voice.md, "When the brain cannot answer").
    hold_on_after_s: float = Field(default=2.0, ge=0.0)
    hold_on_text: str = Field(default="One moment.", max_length=2000)
    apology: str = Field(
        default="Sorry, I can't answer that right now. Please ask me again in a moment.",
        max_length=2000,
    )
    tts_first_chunk_timeout_s: float = Field(default=10.0, gt=0.0)
    tts_idle_timeout_s: float = Field(default=10.0, gt=0.0)
    # How often the TTS workers' loaded voices are read (`$SRV.STATS`), so that a unit goes
    # to a worker that has its voice loaded (docs/tts.md); 0: every unit to the queue group.
    tts_route_refresh_s: float = Field(default=2.0, ge=0.0, le=60.0)
    # A person who leaves a room and joins it again within this long (a reloaded page, a
    # dropped network, a restarted LiveKit server) resumes the same session, greeted with
    # `welcome_back` instead of `greeting`; 0: every join starts a new session.
    rejoin_resume_s: float = Field(default=120.0, ge=0.0, le=86_400.0)
    welcome_back: str = Field(default="Welcome back.", max_length=2000)
    # A session with no speech from the person for this long says goodbye and ends.
    idle_timeout_s: float = Field(default=120.0, gt=0.0)
    farewell: str = Field(default="I'll leave you to it. Goodbye!", max_length=2000)
    # Limits of one conversation (0: none). At the limit, the answer playing ends, the agent
    # says `limit_farewell` and the session ends (`time_limit`, `turn_limit`).
    max_session_s: float = Field(default=3600.0, ge=0.0)
    max_turns: int = Field(default=500, ge=0)
    limit_farewell: str = Field(
        default="We've reached the limit of this conversation. Thank you, and goodbye!",
        max_length=2000,
    )
    # Announcements arriving within this window are spoken as one.
    announce_window_s: float = Field(default=1.5, ge=0.0, le=30.0)
    # At most this many announcements wait per room; a new one at a full queue drops the
    # least important (lowest category, then priority, then oldest), itself included.
    announce_queue_max: int = Field(default=16, ge=1, le=1000)
    barge_in: BargeInSettings = BargeInSettings()
    recording: RecordingSettings = RecordingSettings()
    dispatch: DispatchSettings = DispatchSettings()
    token_ttl_s: int = Field(default=3600, ge=60, le=86_400)
    # The LiveKit JavaScript client for the browser page (`npm ci --prefix services/voice/web`
    # installs it); unset means that install's copy.
    web_client_js: Path | None = None

    @model_validator(mode="after")
    def _stt_choice(self) -> VoiceOptions:
        if self.stt == "deepgram" and self.deepgram_api_key is None:
            raise ValueError("stt=deepgram needs ARC_VOICE__DEEPGRAM_API_KEY")
        if self.endpointing_max_delay_s < self.endpointing_min_delay_s:
            raise ValueError("endpointing_max_delay_s must be at least endpointing_min_delay_s")
        if self.endpointing_unsure_delay_s and not (
            self.endpointing_min_delay_s
            <= self.endpointing_unsure_delay_s
            <= self.endpointing_max_delay_s
        ):
            raise ValueError(
                "endpointing_unsure_delay_s must be 0 (off) or between endpointing_min_delay_s "
                "and endpointing_max_delay_s"
            )
        return self

    @classmethod
    def before_latency_work(cls, **overrides: object) -> VoiceOptions:
        """The pipeline as it was before issue 9 (whole-utterance Whisper on a padded window,
        a 0.35 s silence timer, no preemptive generation): the benchmark's baseline."""
        old: dict[str, object] = {
            "whisper_full_window": True,
            "whisper_workers": 1,
            "whisper_threads": 2,
            "stt_interim_interval_s": 0.0,
            "vad_min_silence_s": 0.35,
            "turn_detection": "vad",
            "endpointing_min_delay_s": 0.1,
            "endpointing_max_delay_s": 3.0,
            "preemptive_generation": False,
            "false_interruption_timeout_s": 0.0,
            "barge_in": {"pause_on_loud_s": 0.0},
        }
        return cls.model_validate({**old, **overrides})

    @property
    def stt_engine(self) -> Literal["whisper", "deepgram"]:
        """Deepgram when a key is present (unless whisper is asked for), else local Whisper."""
        if self.stt is not None:
            return self.stt
        return "deepgram" if self.deepgram_api_key is not None else "whisper"


class VoiceSettings(ServiceSettings):
    service_name: str = "arc-voice"
    postgres: PostgresSettings = PostgresSettings()
    # Shared with the rest of the mesh (`make run` sets ARC_LIVEKIT__URL / __API_KEY / ...).
    livekit: LiveKitSettings = Field(default_factory=LiveKitSettings)
    voice: VoiceOptions = VoiceOptions()
