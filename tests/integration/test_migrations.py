"""Migrations on a real Postgres with pgvector: a fresh database, then a re-run as a no-op."""

from __future__ import annotations

import psycopg
import pytest
from arc_stack.migrations import apply_migrations, migration_files

pytestmark = pytest.mark.integration


async def _schema_snapshot(dsn: str) -> list[tuple[str, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'agents' ORDER BY table_name, ordinal_position"
        )
        cols = [tuple(str(v) for v in row) for row in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'agents' ORDER BY 1"
        )
        return cols + [tuple(row) for row in await cur.fetchall()]


async def test_migrations_apply_on_fresh_database_then_rerun_as_noop(fresh_database: str) -> None:
    first = await apply_migrations(fresh_database)
    assert first == [p.name for p in migration_files()]
    before = await _schema_snapshot(fresh_database)
    tables = {row[0] for row in before if len(row) == 3}
    assert {"sessions", "conversations", "recordings", "outbox"} <= tables
    assert ("conversations", "embedding", "USER-DEFINED") in before
    hnsw = [row for row in before if len(row) == 2 and "hnsw" in row[1]]
    assert hnsw and "vector_cosine_ops" in hnsw[0][1]

    assert await apply_migrations(fresh_database) == []
    assert await _schema_snapshot(fresh_database) == before


async def test_sql_files_are_themselves_idempotent(fresh_database: str) -> None:
    """Even without the tracking table (a database migrated by hand), re-applying is safe."""
    async with await psycopg.AsyncConnection.connect(fresh_database, autocommit=True) as conn:
        for _ in range(2):
            for path in migration_files():
                await conn.execute(path.read_text().encode())


async def test_pgvector_cosine_search_uses_384_dimensions(migrated_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(migrated_dsn) as conn:
        near = "[" + ",".join(["1"] + ["0"] * 383) + "]"
        far = "[" + ",".join(["0", "1"] + ["0"] * 382) + "]"
        for role, vec in (("user", near), ("assistant", far)):
            await conn.execute(
                "INSERT INTO agents.conversations (session_id, turn_id, user_id, role, content,"
                " embedding) VALUES ('s-vec', 't-1', 'u', %s, %s, %s::vector)",
                (role, f"{role} text", vec),
            )
        cur = await conn.execute(
            "SELECT role, embedding <=> %s::vector AS distance FROM agents.conversations"
            " WHERE session_id = 's-vec' ORDER BY distance LIMIT 2",
            (near,),
        )
        rows = await cur.fetchall()
        assert [r[0] for r in rows] == ["user", "assistant"]
        assert rows[0][1] == pytest.approx(0.0) and rows[1][1] == pytest.approx(1.0)
        with pytest.raises(psycopg.errors.DataException):
            await conn.execute("SELECT '[1,2,3]'::vector(384)")
        await conn.rollback()
