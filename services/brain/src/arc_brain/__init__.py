"""Arc brain: LangGraph turn graph, pgvector memory, LLM providers, NATS and HTTP entry points."""
