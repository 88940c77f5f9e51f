"""Intent: who should decide which part of the brain answers a turn, the embedding router
or the default local model asked to classify it?

Seed 002 names an intent agent. The brain routes by rules and then by embedding similarity
to example utterances (`skills.Router`); this benchmark asks whether the default model
(SmolLM2-135M-Instruct on llama-server, as `make run` starts it) does better as the
classifier. Both label the same hand-written utterances, none of them one of the router's
examples: paraphrases of the exact skills (time, date, help, summary) and things only the
model can answer. The model's answer is constrained by a grammar to one label, so it cannot
ramble; its time is the request's round trip on one thread, the way the brain would pay it
before the answer could start.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid

import httpx
from arc_brain.embedding import MiniLmEmbedder, Vector
from arc_brain.settings import BrainOptions
from arc_brain.skills import EXAMPLES, Route, Router
from arc_stack.llm import LlamaServer
from arc_stack.paths import state_dir
from arc_stack.server import free_port

from tests.bench.report import Stats, load_average, run_section, section_header
from tests.fixtures.brain import model_dir

LABELS = ("time", "date", "help", "summary", "other")
# Paraphrases, none of them an example in `skills.EXAMPLES` (checked in `measure`).
UTTERANCES: tuple[tuple[str, str], ...] = (
    ("Got the time?", "time"),
    ("What's the time right now?", "time"),
    ("Could you tell me the current time?", "time"),
    ("How late is it?", "time"),
    ("Do you have the time?", "time"),
    ("What hour is it?", "time"),
    ("Which day is it today?", "date"),
    ("What's the date?", "date"),
    ("Is it Monday today?", "date"),
    ("What day of the month is it?", "date"),
    ("Tell me today's date.", "date"),
    ("What's the date tomorrow?", "date"),
    ("What are you able to do?", "help"),
    ("What can I ask you?", "help"),
    ("How do you work?", "help"),
    ("What kind of things can you help with?", "help"),
    ("Tell me what you can do.", "help"),
    ("What are your features?", "help"),
    ("Can you recap our conversation?", "summary"),
    ("What have we talked about?", "summary"),
    ("Sum up what I said.", "summary"),
    ("Give me a summary of our chat.", "summary"),
    ("Remind me what we discussed.", "summary"),
    ("Briefly, what did we cover?", "summary"),
    ("What's the capital of France?", "other"),
    ("Tell me a joke.", "other"),
    ("How do I boil an egg?", "other"),
    ("Why is the sky blue?", "other"),
    ("I'm feeling a bit tired today.", "other"),
    ("Who wrote Hamlet?", "other"),
    ("Recommend a good book.", "other"),
    ("What's a healthy breakfast?", "other"),
    ("Hi, how is your day going?", "other"),
    ("Can you help me plan a trip to Rome?", "other"),
    ("What's the time difference between London and Tokyo?", "other"),
    ("Do you like music?", "other"),
    ("What time does the sun set in winter?", "other"),
    ("Summarise the plot of Romeo and Juliet.", "other"),
)
ROUTE_LABEL = {
    Route.TIME: "time",
    Route.DATE: "date",
    Route.HELP: "help",
    Route.SUMMARISE: "summary",
}
PROMPT = (
    "Classify the user's request. Answer with one word:\n"
    "time - asks for the current time\n"
    "date - asks for today's date or day\n"
    "help - asks what the assistant can do\n"
    "summary - asks to sum up this conversation\n"
    "other - anything else"
)
# The router's floor for the exact skills when a model is configured
# (`ARC_BRAIN__LLM_ROUTE_MIN_SIMILARITY`), the shipped one and its neighbours.
SHIPPED = BrainOptions().llm_route_min_similarity
THRESHOLDS = tuple(sorted({0.55, 0.6, 0.7, SHIPPED}))
GRAMMAR = "root ::= " + " | ".join(f'"{label}"' for label in LABELS)


def _router_label(router: Router, text: str, vector: Vector, min_similarity: float) -> str:
    routed = router.by_rule(text) or router.by_meaning_with_llm(vector, min_similarity)
    return ROUTE_LABEL.get(routed.route, "other")


async def _model_label(http: httpx.AsyncClient, text: str) -> tuple[str, float]:
    began = time.perf_counter()
    r = await http.post(
        "/chat/completions",
        json={
            "model": "smollm2",
            "max_tokens": 5,
            "temperature": 0,
            "grammar": GRAMMAR,
            "messages": [
                {"role": "system", "content": PROMPT},
                {"role": "user", "content": text},
            ],
        },
    )
    r.raise_for_status()
    label = str(r.json()["choices"][0]["message"]["content"]).strip()
    return label, (time.perf_counter() - began) * 1000


async def measure() -> str:
    examples = {t.lower() for texts in EXAMPLES.values() for t in texts}
    overlap = [t for t, _ in UTTERANCES if t.lower() in examples]
    if overlap:
        raise RuntimeError(f"not paraphrases, the router's own examples: {overlap}")
    load_at_start = load_average()
    root = state_dir() / "bench-runs" / uuid.uuid4().hex[:8]
    server = LlamaServer(root / "llm", root / "logs", port=free_port(), threads=1)
    embedder = await asyncio.to_thread(MiniLmEmbedder, model_dir())
    try:
        await server.install()
        await server.start()
        router = Router.from_examples(await embedder.embed_many(Router.example_texts()))
        right = dict.fromkeys(THRESHOLDS, 0)
        model_right = 0
        router_ms: list[float] = []
        model_ms: list[float] = []
        misses: list[str] = []
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            await _model_label(http, "warm up")
            for text, want in UTTERANCES:
                began = time.perf_counter()
                vector = await embedder.embed(text)
                labels = {t: _router_label(router, text, vector, t) for t in THRESHOLDS}
                router_ms.append((time.perf_counter() - began) * 1000)
                by_model, ms = await _model_label(http, text)
                model_ms.append(ms)
                for threshold, label in labels.items():
                    right[threshold] += label == want
                model_right += by_model == want
                shipped = labels[SHIPPED]
                if shipped != want or by_model != want:
                    misses.append(f"| {text} | {want} | {shipped} | {by_model} |")
    finally:
        embedder.close()
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)
    n = len(UTTERANCES)
    r, m = Stats.of(router_ms), Stats.of(model_ms)
    return (
        section_header(
            "Intent: embedding router vs the local model as classifier",
            "make bench BENCH=intent",
            load_at_start=load_at_start,
        )
        + f"{n} utterances, paraphrases of the exact skills and questions only the model can "
        "answer, none of them a router example (`tests/bench/intent.py`). The model "
        "(SmolLM2-135M, 1 thread) is constrained by a grammar to one label.\n\n"
        "| classifier | right | p50 ms | p95 ms |\n|---|---:|---:|---:|\n"
        + "".join(
            f"| rules + embedding router, exact skills at similarity ≥ {t}"
            f"{' (as shipped)' if t == SHIPPED else ''} | {right[t]}/{n} | "
            f"{r.p50:.1f} | {r.p95:.1f} |\n"
            for t in THRESHOLDS
        )
        + f"| local model, one label by grammar | {model_right}/{n} | {m.p50:.0f} | "
        f"{m.p95:.0f} |\n\n"
        "Utterances either got wrong (the router as shipped):\n\n"
        "| utterance | right label | router | model |\n"
        "|---|---|---|---|\n" + "\n".join(misses) + "\n"
    )


def main() -> str:
    return run_section("intent", measure())
