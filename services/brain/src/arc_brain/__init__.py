"""Arc brain: LangGraph turn graph, pgvector memory, LLM providers, NATS and HTTP entry points."""

__version__ = "0.1.0"
