import aiohttp
import pytest
from arc_voice.conversation import turn_handling
from arc_voice.models import VoiceModels
from arc_voice.settings import VoiceOptions, VoiceSettings
from livekit.plugins import deepgram, silero
from pydantic import ValidationError

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _livekit_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_LIVEKIT__API_KEY", "arc0123456789ab")
    monkeypatch.setenv("ARC_LIVEKIT__API_SECRET", "s" * 43)


def test_the_livekit_dev_keys_are_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("ARC_LIVEKIT__API_KEY", "devkey"), ("ARC_LIVEKIT__API_SECRET", "secret")):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(ValidationError, match="development keys"):
                VoiceSettings()
            env.setenv("ARC_LIVEKIT__ALLOW_DEV_KEYS", "true")
            assert VoiceSettings().livekit.allow_dev_keys


def test_defaults_and_nested_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_VOICE__HTTP_PORT", "9093")
    monkeypatch.setenv("ARC_VOICE__BARGE_IN__SPEAKING_MARGIN_DB", "20")
    monkeypatch.setenv("ARC_VOICE__ROOMS", '["a", "b"]')
    monkeypatch.setenv("ARC_LIVEKIT__URL", "ws://10.0.0.5:7880")
    settings = VoiceSettings()
    assert settings.voice.http_port == 9093
    assert settings.voice.barge_in.speaking_margin_db == 20
    assert settings.voice.rooms == ["a", "b"]
    assert settings.livekit.url == "ws://10.0.0.5:7880"
    assert settings.livekit.api_key == "arc0123456789ab"
    assert settings.voice.stt_engine == "whisper"
    assert (settings.voice.max_session_s, settings.voice.max_turns) == (3600.0, 500)


def test_the_lines_said_for_the_brain_and_at_the_limits_are_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARC_VOICE__HOLD_ON_AFTER_S", "0")
    monkeypatch.setenv("ARC_VOICE__HOLD_ON_TEXT", "Un instant.")
    monkeypatch.setenv("ARC_VOICE__APOLOGY", "Désolé.")
    monkeypatch.setenv("ARC_VOICE__LIMIT_FAREWELL", "Au revoir.")
    monkeypatch.setenv("ARC_VOICE__MAX_TURNS", "0")
    voice = VoiceSettings().voice
    assert (voice.hold_on_after_s, voice.hold_on_text, voice.apology) == (
        0.0,
        "Un instant.",
        "Désolé.",
    )
    assert (voice.limit_farewell, voice.max_turns) == ("Au revoir.", 0)


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("ARC_VOICE__HTTP_PORT", "0"),
        ("ARC_VOICE__TTS_SAMPLE_RATE", "44100"),
        ("ARC_VOICE__STT", "deepgram"),  # without a key
        ("ARC_VOICE__BARGE_IN__MARGIN_DB", "-3"),
        ("ARC_VOICE__TURN_DETECTION", "silence"),
        ("ARC_VOICE__ENDPOINTING_MAX_DELAY_S", "-1"),
        ("ARC_VOICE__TURN_UNLIKELY_THRESHOLD", "1.5"),
        ("ARC_VOICE__TURN_UNSURE_THRESHOLD", "1"),
        ("ARC_VOICE__ENDPOINTING_UNSURE_DELAY_S", "0.9"),  # over the max delay (0.8)
        ("ARC_VOICE__STT_INTERIM_INTERVAL_S", "-0.1"),
        ("ARC_VOICE__MAX_SESSION_S", "-1"),
        ("ARC_VOICE__MAX_TURNS", "-1"),
        ("ARC_VOICE__HOLD_ON_AFTER_S", "-0.5"),
        ("ARC_VOICE__APOLOGY", "x" * 2001),
        ("ARC_VOICE__WHISPER_WORKERS", "0"),
        ("ARC_VOICE__WHISPER_THREADS", "0"),
    ):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(ValidationError):
                VoiceSettings()


async def test_a_deepgram_key_selects_deepgram(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_VOICE__DEEPGRAM_API_KEY", "dg-test-key")
    monkeypatch.setenv("ARC_VOICE__DEEPGRAM_BASE_URL", "http://127.0.0.1:9/v1/listen")
    options = VoiceSettings().voice
    assert options.stt_engine == "deepgram"
    models = VoiceModels(vad=silero.VAD.load(), whisper=None)
    async with aiohttp.ClientSession() as http:
        recogniser = models.recogniser(options, models.vad, http)
        assert isinstance(recogniser, deepgram.STT)
        assert recogniser.capabilities.streaming
        with pytest.raises(ValueError, match="HTTP session"):
            models.recogniser(options, models.vad, None)
    monkeypatch.setenv("ARC_VOICE__STT", "whisper")
    assert VoiceSettings().voice.stt_engine == "whisper"


def test_latency_settings_and_the_old_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_VOICE__TURN_DETECTION", "vad")
    monkeypatch.setenv("ARC_VOICE__PREEMPTIVE_GENERATION", "false")
    monkeypatch.setenv("ARC_VOICE__FALSE_INTERRUPTION_TIMEOUT_S", "0")
    voice = VoiceSettings().voice
    assert voice.turn_detection == "vad" and not voice.preemptive_generation
    assert voice.false_interruption_timeout_s == 0
    shipped = VoiceOptions()
    assert shipped.turn_detection == "model" and shipped.preemptive_generation
    assert shipped.vad_min_silence_s < 0.2 and not shipped.whisper_full_window
    old = VoiceOptions.before_latency_work(greeting="")
    assert old.greeting == "" and old.whisper_full_window and old.vad_min_silence_s == 0.35
    assert old.turn_detection == "vad" and not old.preemptive_generation
    with pytest.raises(ValidationError):
        VoiceOptions(endpointing_min_delay_s=1.0, endpointing_max_delay_s=0.5)
    with pytest.raises(ValidationError, match="endpointing_unsure_delay_s"):
        VoiceOptions(endpointing_min_delay_s=0.3, endpointing_unsure_delay_s=0.2)
    assert VoiceOptions(endpointing_unsure_delay_s=0).endpointing_unsure_delay_s == 0  # off


def test_turn_handling_follows_the_settings() -> None:
    shipped = turn_handling(VoiceOptions())
    assert shipped["preemptive_generation"] == {"enabled": True, "preemptive_tts": True}
    interruption = shipped["interruption"]
    assert interruption["resume_false_interruption"] is True
    assert interruption["false_interruption_timeout"] == VoiceOptions().false_interruption_timeout_s
    assert shipped["endpointing"]["max_delay"] == VoiceOptions().endpointing_max_delay_s
    assert not isinstance(shipped["turn_detection"], str)  # the end-of-turn model
    old = turn_handling(VoiceOptions.before_latency_work())
    assert old["turn_detection"] == "vad"
    assert old["preemptive_generation"]["enabled"] is False
    assert old["interruption"]["resume_false_interruption"] is False


def test_an_empty_agent_name_registers_the_worker_unnamed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert VoiceSettings().voice.dispatch.agent_name == "arc"
    monkeypatch.setenv("ARC_VOICE__DISPATCH__MODE", "livekit")
    monkeypatch.setenv("ARC_VOICE__DISPATCH__AGENT_NAME", "")
    dispatch = VoiceSettings().voice.dispatch
    assert (dispatch.mode, dispatch.agent_name) == ("livekit", "")
