"""LiveKit Agents plugins whose transport is Arc's NATS streaming RPC, and the local STT."""

from arc_voice.plugins.brain_llm import BrainTurn, NatsBrainLLM
from arc_voice.plugins.stt import WhisperSTT
from arc_voice.plugins.tts import NatsTTS

__all__ = ["BrainTurn", "NatsBrainLLM", "NatsTTS", "WhisperSTT"]
