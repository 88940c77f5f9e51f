"""Streaming request/reply over NATS: one request, an ordered stream of chunks, one terminal."""

from arc_common.streaming.client import ReplyStream, StreamingClient
from arc_common.streaming.in_process import ChunkStream, InProcessClient, TurnStreams
from arc_common.streaming.server import Chunk, StreamingEndpoint, StreamingService, TurnContext

__all__ = [
    "Chunk",
    "ChunkStream",
    "InProcessClient",
    "ReplyStream",
    "StreamingClient",
    "StreamingEndpoint",
    "StreamingService",
    "TurnContext",
    "TurnStreams",
]
