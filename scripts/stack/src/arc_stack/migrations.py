"""Applies `migrations/*.sql` in order. Each file is applied once (tracked in
`public.arc_schema_migrations`) and is itself written to be idempotent, so a re-run is a no-op
even on a database migrated by hand."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg

from arc_stack.paths import repo_root

# Any constant works; it only has to be the same for every process migrating this database.
_LOCK_KEY = 0x4152435F4D4947


def migration_files(directory: Path | None = None) -> list[Path]:
    folder = directory or repo_root() / "migrations"
    return sorted(folder.glob("*.sql"))


async def apply_migrations(dsn: str, directory: Path | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied now (empty when up to date)."""
    applied: list[str] = []
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS public.arc_schema_migrations ("
                " name text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT name FROM public.arc_schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for path in migration_files(directory):
                if path.name in done:
                    continue
                text = path.read_text()
                async with conn.transaction():
                    await conn.execute(text.encode())
                    await conn.execute(
                        "INSERT INTO public.arc_schema_migrations (name, checksum) VALUES (%s, %s)",
                        (path.name, hashlib.sha256(text.encode()).hexdigest()),
                    )
                applied.append(path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
