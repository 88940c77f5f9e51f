"""Prometheus metrics of one TTS worker, in a registry of its own (tests run several workers
in one process, and the global registry would refuse the second)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector


class TtsMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # CPU, memory and open files of the process, as process_* (System health dashboard).
        ProcessCollector(registry=self.registry)
        self.first_chunk_seconds = Histogram(
            "arc_tts_first_chunk_seconds",
            "Time from the start of a stream to its first audio chunk.",
            buckets=(0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0),
            registry=self.registry,
        )
        self.real_time_factor = Histogram(
            "arc_tts_real_time_factor",
            "Synthesis time divided by the duration of the audio, per piece of text.",
            buckets=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0),
            registry=self.registry,
        )
        self.resample_seconds = Counter(
            "arc_tts_resample_seconds",
            "CPU time spent resampling.",
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "arc_tts_audio_seconds",
            "Seconds of audio produced.",
            registry=self.registry,
        )
        self.active_streams = Gauge(
            "arc_tts_active_streams", "Streams being served.", registry=self.registry
        )
        self.queue_depth = Gauge(
            "arc_tts_queue_depth",
            "Inferences waiting for a synthesis thread.",
            registry=self.registry,
        )
        self.resident_voices = Gauge(
            "arc_tts_resident_voices", "Voices loaded in memory.", registry=self.registry
        )
        self.streams = Counter(
            "arc_tts_streams",
            "Streams by how they ended.",
            ["outcome"],
            registry=self.registry,
        )
        # At zero from start-up, so the first stream of each outcome is a visible increase.
        for outcome in ("completed", "cancelled", "error", "busy"):
            self.streams.labels(outcome)
