"""The brain on loopback: first delta of the skills path, memory recall at 100 000 stored
turns with the HNSW index, and the LLM path's own overhead on top of the endpoint's first
token.

Everything is real except the LLM: a private NATS server and Postgres + pgvector, the brain
in-process with the MiniLM embedder (onnxruntime), and a local server speaking OpenAI's streaming
protocol over HTTP (tests/integration/brain/openai_double.py).
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from contextlib import AsyncExitStack

import numpy as np
import psycopg
from arc_brain.embedding import MiniLmEmbedder
from arc_brain.memory import MemoryStore
from arc_brain.settings import LlmSettings
from arc_common.nats_connection import connect
from arc_common.settings import NatsSettings
from arc_common.streaming import StreamingClient
from arc_common.subjects import BRAIN_CANCEL, BRAIN_REQUEST, prefixed
from arc_common.wire import BrainRequest
from arc_stack.nats import NatsServer
from arc_stack.paths import state_dir
from arc_stack.postgres import PostgresServer
from arc_stack.server import free_port
from pgvector.psycopg import register_vector_async

from tests.bench.report import Stats, run_section, section_header
from tests.fixtures.brain import brain_settings, model_dir, start_brain
from tests.integration.brain.openai_double import start_double

SKILL_TURNS = 200
SKILL_WARMUP = 30
SKILL_TEXTS = (
    "hello",
    "what time is it?",
    "what colour is my car?",
    "repeat after me: the quick brown fox jumps over the lazy dog",
    "what's the date today?",
    "what can you do?",
)
STORED_TURNS = 100_000
HEAVY_USER_TURNS = 20_000
LIGHT_USERS = 800
RECALLS = 200
LLM_TURNS = 100
DIMS = 384


async def _first_delta(
    client: StreamingClient, prefix: str, req: BrainRequest
) -> tuple[float, float]:
    """(send time, first delta receive time), both time.perf_counter()."""
    sent = time.perf_counter()
    first = 0.0
    async with client.stream(
        prefixed(prefix, BRAIN_REQUEST), req, cancel_subject=prefixed(prefix, BRAIN_CANCEL)
    ) as stream:
        async for _chunk in stream:
            if not first:
                first = time.perf_counter()
    return sent, first


async def bench_skills(client: StreamingClient, prefix: str) -> Stats:
    samples: list[float] = []
    user = "bench-user"
    session = f"bench-{uuid.uuid4().hex[:8]}"
    for i in range(SKILL_WARMUP + SKILL_TURNS):
        if i % 10 == 0:
            session = f"bench-{uuid.uuid4().hex[:8]}"  # keep history at a realistic size
        text = SKILL_TEXTS[i % len(SKILL_TEXTS)]
        req = BrainRequest(
            v=1,
            session_id=session,
            turn_id=f"skill-{i}-{uuid.uuid4().hex[:6]}",
            user_id=user,
            text=text,
        )
        sent, first = await _first_delta(client, prefix, req)
        if i >= SKILL_WARMUP:
            samples.append((first - sent) * 1000)
    return Stats.of(samples)


def _unit(vectors: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(
        np.float32
    )
    return unit


def _near(rng: np.random.Generator, around: np.ndarray, spread: float) -> np.ndarray:
    """Unit vectors scattered around `around` (rows); `spread` is the noise's norm."""
    noise = rng.normal(0, spread / np.sqrt(DIMS), around.shape).astype(np.float32)
    return _unit(around + noise)


async def load_turns(dsn: str) -> tuple[float, float, str, dict[str, list[np.ndarray]]]:
    """100 000 user turns: one heavy user with 20 000, the rest over 800 users. Each turn is
    near one of 2 000 topics (sentence embeddings cluster by topic; uniform noise would be
    HNSW's worst case). Returns the load and index-build seconds, the plan of a heavy user's
    recall, and some stored vectors per user to ask about."""
    rng = np.random.default_rng(7)
    topics = _unit(rng.normal(size=(2_000, DIMS)).astype(np.float32))
    asked: dict[str, list[np.ndarray]] = {}
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await register_vector_async(conn)
        await conn.execute("DROP INDEX IF EXISTS agents.conversations_embedding_hnsw")
        async with conn.cursor() as cur:
            done = 0
            while done < STORED_TURNS:
                batch = min(10_000, STORED_TURNS - done)
                vectors = _near(rng, topics[rng.integers(0, len(topics), batch)], 0.5)
                async with cur.copy(
                    "COPY agents.conversations (session_id, turn_id, user_id, role, content, "
                    "embedding) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["text", "text", "text", "text", "text", "vector"])
                    for j in range(batch):
                        k = done + j
                        user = "heavy-user" if k < HEAVY_USER_TURNS else f"user-{k % LIGHT_USERS}"
                        seen = asked.setdefault(user, [])
                        if len(seen) < 3:
                            seen.append(vectors[j])
                        await copy.write_row(
                            (
                                f"load-{k // 20}",
                                f"t{k}",
                                user,
                                "user",
                                f"stored turn {k}",
                                vectors[j],
                            )
                        )
                done += batch
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(
            "CREATE INDEX IF NOT EXISTS conversations_embedding_hnsw "
            "ON agents.conversations USING hnsw (embedding vector_cosine_ops)"
        )
        await conn.execute("ANALYZE agents.conversations")
        built = time.perf_counter() - started
        await conn.execute("SET hnsw.iterative_scan = relaxed_order")
        plan = await (
            await conn.execute(
                "EXPLAIN SELECT content FROM agents.conversations WHERE user_id = %s "
                "AND role = 'user' AND embedding IS NOT NULL AND session_id <> 'x' "
                "ORDER BY embedding <=> %b LIMIT 4",
                ("heavy-user", asked["heavy-user"][0]),
            )
        ).fetchall()
    scan = next((str(r[0]).strip() for r in plan if "Scan" in str(r[0])), "?")
    return loaded, built, scan, asked


async def bench_recall(dsn: str, asked: dict[str, list[np.ndarray]]) -> dict[str, Stats]:
    """Each query is near something the user said before: the case recall is for."""
    rng = np.random.default_rng(11)
    store = MemoryStore(dsn, timeout_s=2.0)
    await store.open()
    results: dict[str, Stats] = {}
    try:
        for label, users in (
            ("heavy user (20 000 turns)", ["heavy-user"]),
            ("typical user (100 turns)", [f"user-{i}" for i in range(LIGHT_USERS)]),
        ):
            samples = []
            for i in range(RECALLS + 20):
                started = time.perf_counter()
                user = users[i % len(users)]
                said = asked[user][i % len(asked[user])]
                found = await store.recall(
                    user,
                    "bench",
                    _near(rng, said, 0.5),
                    k=4,
                    min_similarity=-1.0,
                )
                if i >= 20:
                    samples.append((time.perf_counter() - started) * 1000)
                assert found, "recall found nothing"
            results[label] = Stats.of(samples)
    finally:
        await store.close()
    return results


async def bench_llm(
    client: StreamingClient, prefix: str, double_first_token: dict[str, float]
) -> Stats:
    samples = []
    for i in range(LLM_TURNS + 15):
        text = f"llm bench turn {i} {uuid.uuid4().hex[:6]}"
        req = BrainRequest(
            v=1,
            session_id=f"llm-{i // 10}",
            turn_id=f"llm-{i}-{uuid.uuid4().hex[:6]}",
            user_id="llm-user",
            text=text,
        )
        _, first = await _first_delta(client, prefix, req)
        if i >= 15:
            samples.append((first - double_first_token[text]) * 1000)
    return Stats.of(samples)


async def measure() -> str:
    root = state_dir() / "bench-runs" / uuid.uuid4().hex[:8]
    nats = NatsServer(root / "nats", root / "nats-logs", port=free_port(), monitor_port=free_port())
    pg = PostgresServer(root / "pgdata", root / "pg-logs", port=free_port(), database="arc")
    await nats.start()
    await pg.start()
    try:
        embedder = await asyncio.to_thread(MiniLmEmbedder, model_dir())
        double, double_server, double_task = await start_double()
        async with AsyncExitStack() as stack:
            await start_brain(
                stack,
                brain_settings(NatsSettings(url=nats.url, subject_prefix="sk"), pg.dsn()),
                embedder,
            )
            llm = LlmSettings(base_url=double.base_url, model="sentence-first")
            await start_brain(
                stack,
                brain_settings(NatsSettings(url=nats.url, subject_prefix="llm"), pg.dsn(), llm=llm),
                embedder,
            )
            nc = await connect(NatsSettings(url=nats.url), name="bench-client")
            client = StreamingClient(nc)
            await client.start()
            skills = await bench_skills(client, "sk")
            llm_overhead = await bench_llm(client, "llm", double.first_token_sent)
            await client.close()
            await nc.drain()
        double_server.should_exit = True
        await double_task
        loaded, built, scan, asked = await load_turns(pg.dsn())
        recall = await bench_recall(pg.dsn(), asked)
        embed_samples = []
        for i in range(200):
            started = time.perf_counter()
            embedder.encode([SKILL_TEXTS[i % len(SKILL_TEXTS)]])
            embed_samples.append((time.perf_counter() - started) * 1000)
        embed = Stats.of(embed_samples[20:])
        embedder.close()
    finally:
        await pg.stop()
        await nats.stop()
        shutil.rmtree(root, ignore_errors=True)
    return render(skills, llm_overhead, recall, embed, loaded, built, scan)


def _verdict(value: float, target: float) -> str:
    return "met" if value <= target else "NOT met"


def render(
    skills: Stats,
    llm: Stats,
    recall: dict[str, Stats],
    embed: Stats,
    loaded: float,
    built: float,
    scan: str,
) -> str:
    lines = [
        section_header("Brain: skills first delta, memory recall, LLM overhead", "make bench"),
        "Times in ms. The brain runs in-process on a private NATS and Postgres + pgvector;",
        "requests come over NATS from a separate connection.",
        "",
        "| measurement | n | p50 | p95 | mean | target (p95) |",
        "|---|---|---|---|---|---|",
        f"| skills path: request → first delta | {skills.n} | {skills.p50:.2f} | "
        f"{skills.p95:.2f} | {skills.mean:.2f} | ≤ 20 ({_verdict(skills.p95, 20)}) |",
    ]
    for label, stats in recall.items():
        lines.append(
            f"| recall at {STORED_TURNS:,} turns, {label} | {stats.n} | {stats.p50:.2f} | "
            f"{stats.p95:.2f} | {stats.mean:.2f} | ≤ 10 ({_verdict(stats.p95, 10)}) |"
        )
    lines += [
        f"| LLM path: first delta minus endpoint's first token | {llm.n} | {llm.p50:.2f} | "
        f"{llm.p95:.2f} | {llm.mean:.2f} | ≤ 5 ({_verdict(llm.p95, 5)}) |",
        f"| MiniLM embedding of one short sentence (onnxruntime) | {embed.n} | {embed.p50:.2f} | "
        f"{embed.p95:.2f} | {embed.mean:.2f} | — |",
        "",
        f"Recall data: {STORED_TURNS:,} user turns with 384-d embeddings (COPY in "
        f"{loaded:.1f} s, HNSW index build {built:.1f} s), each near one of 2 000 topics; "
        f"one user holds {HEAVY_USER_TURNS:,} of them, {LIGHT_USERS} users share the rest. "
        "Each query is near something that user said. Recall is `MemoryStore.recall` "
        "itself: the user's facts and earlier turns, top 4 by cosine.",
        f"Plan for the heavy user's turns: `{scan}`.",
        "The skills path includes embedding the utterance (the row above) and the history and",
        "recall queries; the LLM row is the time from the local OpenAI-protocol server sending",
        "its first token (a whole short sentence) to that sentence arriving as a delta.",
    ]
    return "\n".join(lines) + "\n"


def main() -> str:
    return run_section("brain", measure())
