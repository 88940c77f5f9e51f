"""Arc TTS: Piper synthesis, chunking, resampling, voice registry, NATS and HTTP entry points."""
