"""Prometheus metrics of one TTS worker, in a registry of its own (tests run several workers
in one process, and the global registry would refuse the second)."""

from __future__ import annotations

from arc_common.metrics import ServiceMetrics


class TtsMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.first_chunk_seconds = self.histogram(
            "arc_tts_first_chunk_seconds",
            "Time from the start of a stream to its first audio chunk.",
            buckets=(0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0),
        )
        self.real_time_factor = self.histogram(
            "arc_tts_real_time_factor",
            "Synthesis time divided by the duration of the audio, per piece of text.",
            buckets=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0),
        )
        self.resample_seconds = self.counter(
            "arc_tts_resample_seconds", "CPU time spent resampling."
        )
        self.audio_seconds = self.counter("arc_tts_audio_seconds", "Seconds of audio produced.")
        self.active_streams = self.gauge("arc_tts_active_streams", "Streams being served.")
        self.queue_depth = self.gauge(
            "arc_tts_queue_depth", "Inferences waiting for a synthesis thread."
        )
        self.resident_voices = self.gauge("arc_tts_resident_voices", "Voices loaded in memory.")
        self.streams = self.counter("arc_tts_streams", "Streams by how they ended.", ["outcome"])
        # At zero from start-up, so the first stream of each outcome is a visible increase.
        for outcome in ("completed", "cancelled", "error", "busy"):
            self.streams.labels(outcome)
