"""Voice to voice for turns the default offline model answers, through a real LiveKit room:
the same questions to two voice workers, one whose brain answers by skills only and one
whose brain uses the local model (`llama-server`, SmolLM2-135M-Instruct, as `make run` sets
it), interleaved turn by turn. Timed from the person's side, as in the voice benchmark
(`tests/bench/voice.py`, whose rigs and helpers this reuses).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from functools import partial

from arc_stack.llm import LlamaServer
from arc_stack.parts import local_llm_env
from arc_stack.server import free_port
from arc_voice.settings import VoiceOptions

from tests.bench.report import Stats, load_average, run_section, section_header
from tests.bench.voice import (
    BENCH_IDLE_TIMEOUT_S,
    Results,
    _mesh,
    _people,
    _record,
    _rig,
    _row,
    _stage_table,
    _start_services,
    _turn,
    _v2v,
)
from tests.fixtures.speakers import speakers

ROUNDS = 18
QUESTIONS = (
    "Tell me something about the sea.",
    "What's the capital of France?",
    "Hello there, how are you?",
    "What do bees make?",
    "Tell me a joke.",
    "Who wrote Romeo and Juliet?",
)


async def measure() -> str:
    load_at_start = load_average()
    voices = speakers()
    results = Results()
    async with AsyncExitStack() as stack:
        root, nats, pg, livekit, pool = await _mesh(stack)
        llm = LlamaServer(root / "llm", root / "llm-logs", port=free_port())
        await llm.install()
        await llm.start()
        stack.push_async_callback(llm.stop)
        brains = {"skills": None, "model": local_llm_env(llm.base_url)}
        for prefix, brain_env in brains.items():
            await _start_services(
                stack, root, f"bench-{prefix}", nats_url=nats.url, dsn=pg.dsn(), brain_env=brain_env
            )
        people = await _people(stack)
        rig = partial(_rig, stack, nats_url=nats.url, livekit=livekit, pool=pool, people=people)
        options = VoiceOptions(greeting="", idle_timeout_s=BENCH_IDLE_TIMEOUT_S)
        skills = await rig("skills", options, prefix="bench-skills")
        model = await rig("model", options, prefix="bench-model", models=skills.worker.deps.models)
        for warm in (skills, model):
            await _turn(warm, *voices[0].say("Hello."))
        rigs = [skills, model]
        for i in range(ROUNDS):
            pcm, rate = voices[i % len(voices)].say(QUESTIONS[i % len(QUESTIONS)])
            for r in rigs[i % 2 :] + rigs[: i % 2]:
                _record(results, r.name, await _turn(r, pcm, rate))
        answers = [t.turn.assistant_text for t in model.conversation.log.turns][-len(QUESTIONS) :]

    body = section_header(
        "Voice to voice for turns the local model answers (issue 10)",
        "make bench BENCH=voice_llm",
        load_at_start=load_at_start,
    )
    skills_v2v = Stats.of([v * 1000 for v in _v2v(results, "skills")])
    model_v2v = Stats.of([v * 1000 for v in _v2v(results, "model")])
    body += (
        f"The same {len(QUESTIONS)} questions ({ROUNDS} turns per variant, interleaved, spoken "
        f"by {' and '.join(v.name for v in voices)}) to a voice worker whose brain answers by "
        "skills only and to one whose brain uses the local model, as `make run` sets it "
        "(SmolLM2-135M-Instruct on `llama-server`, 1 thread). From the person's side: end of "
        "their speech → first audible frame of the answer, ms.\n\n"
        "| variant | p50 | p95 | mean | n |\n|---|---:|---:|---:|---:|\n"
        + _row("skills only", _v2v(results, "skills"))
        + _row("local model", _v2v(results, "model"))
        + f"\nRatio model / skills: {model_v2v.p50 / skills_v2v.p50:.2f} (p50) / "
        f"{model_v2v.p95 / skills_v2v.p95:.2f} (p95). Turns with no audible answer: "
        f"{results.missing or 'none'}.\n\n**Stages of the model's turns**\n\n"
        + _stage_table(results.turns.get("model", []))
        + "\nThe model's last answers, as heard: "
        + "; ".join(f"“{a}”" for a in answers)
        + "\n"
    )
    return body


def main() -> str:
    return run_section("voice_llm", measure())
