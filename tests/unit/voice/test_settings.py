import aiohttp
import pytest
from arc_voice.models import VoiceModels
from arc_voice.settings import VoiceSettings
from livekit.plugins import deepgram, silero
from pydantic import ValidationError

pytestmark = pytest.mark.unit


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
    assert settings.livekit.api_key == "devkey"
    assert settings.voice.stt_engine == "whisper"


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("ARC_VOICE__HTTP_PORT", "0"),
        ("ARC_VOICE__TTS_SAMPLE_RATE", "44100"),
        ("ARC_VOICE__STT", "deepgram"),  # without a key
        ("ARC_VOICE__BARGE_IN__MARGIN_DB", "-3"),
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
