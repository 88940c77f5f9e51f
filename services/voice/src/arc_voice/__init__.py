"""Arc voice worker: LiveKit Agents worker with NATS brain and TTS plugins."""
