"""The benchmark's scripted people in a process of their own.

A person's microphone pump and their WebRTC stack cost CPU and, in the benchmark's own
process, the voice workers' GIL and event loop: figures measured with both in one process
carry load no user's worker has. Here every `RoomCaller` lives in a child process
(`python -m tests.bench.people`), and the benchmark drives each through a `RemoteCaller`
with the same calls. Times are `time.monotonic()`, which on Linux is one clock for every
process of the machine, so the person's marks and the worker's compare directly.

The protocol is one JSON object per line: requests `{"id", "op", ...}` on the child's
stdin, replies `{"id", "result"}` or `{"id", "error", "timeout"}` on a pipe of its own (the
child's stdout is its stderr, so a library that prints cannot corrupt it). Requests run
concurrently; a bad one is answered with an error and the child keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from arc_voice.caller import RoomCaller, Utterance

LINE_LIMIT = 64 * 1024 * 1024  # a request carries a whole utterance's PCM


class RemoteTimeout(TimeoutError):
    """The person waited in vain (no audible answer, the agent kept talking)."""


@dataclass
class People:
    """The child process and the replies it owes."""

    process: asyncio.subprocess.Process
    replies: asyncio.StreamReader
    waiting: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=itertools.count)
    reader: asyncio.Task[None] | None = None

    async def call(self, op: str, **args: Any) -> Any:
        number = next(self.ids)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[number] = reply
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": number, "op": op, **args}).encode() + b"\n")
        await self.process.stdin.drain()
        return await reply

    async def _read(self) -> None:
        try:
            while line := await self.replies.readline():
                message = json.loads(line)
                reply = self.waiting.pop(message["id"], None)
                if reply is None or reply.done():
                    continue
                if "error" not in message:
                    reply.set_result(message["result"])
                elif message.get("timeout"):
                    reply.set_exception(RemoteTimeout(message["error"]))
                else:
                    reply.set_exception(RuntimeError(f"scripted person: {message['error']}"))
        finally:
            for reply in self.waiting.values():
                if not reply.done():
                    reply.set_exception(RuntimeError("the scripted people's process ended"))

    async def caller(self, url: str, token: str, agent_track: str | None) -> RemoteCaller:
        key = await self.call("join", url=url, token=token, agent_track=agent_track)
        return RemoteCaller(self, int(key))

    async def aclose(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self.reader is not None:
            await self.reader


async def start_people() -> People:
    """Start the child; `aclose` ends it (its rooms disconnect as it exits)."""
    read_fd, write_fd = os.pipe()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bench.people",
        str(write_fd),
        stdin=asyncio.subprocess.PIPE,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    loop = asyncio.get_running_loop()
    replies = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(replies), os.fdopen(read_fd, "rb", 0)
    )
    people = People(process, replies)
    people.reader = asyncio.create_task(people._read(), name="people.replies")
    return people


@dataclass
class RemoteCaller:
    """`RoomCaller`'s calls, for a person living in the `People` process."""

    people: People
    key: int

    async def _call(self, op: str, **args: Any) -> Any:
        return await self.people.call(op, key=self.key, **args)

    async def wait_for_agent(self, within_s: float = 30.0) -> None:
        await self._call("wait_for_agent", within_s=within_s)

    async def say(self, pcm: bytes, rate: int) -> asyncio.Future[Utterance]:
        """Queue speech; the future is the `Utterance` once its last frame has gone out."""
        reply = self._call("say", pcm=base64.b64encode(pcm).decode(), rate=rate)

        async def spoken() -> Utterance:
            return Utterance(**await reply)

        return asyncio.ensure_future(spoken())

    async def wait_audible(self, after: float, within_s: float) -> float:
        return float(await self._call("wait_audible", after=after, within_s=within_s))

    async def wait_quiet(self, quiet_s: float, within_s: float) -> float:
        return float(await self._call("wait_quiet", quiet_s=quiet_s, within_s=within_s))

    async def first_audible_after(self, after: float) -> float | None:
        found = await self._call("first_audible_after", after=after)
        return None if found is None else float(found)

    async def audible_between(self, start: float, end: float) -> list[float]:
        """When each audible frame of the agent's arrived, strictly between the two times."""
        return [float(at) for at in await self._call("audible_between", start=start, end=end)]

    async def aclose(self) -> None:
        with contextlib.suppress(RuntimeError):
            await self._call("leave")


# -- the child ----------------------------------------------------------------------------------


class _Host:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.callers: dict[int, RoomCaller] = {}
        self.keys = itertools.count()
        self.tasks: set[asyncio.Task[None]] = set()

    def _reply(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message).encode() + b"\n")

    async def join(self, url: str, token: str, agent_track: str | None) -> int:
        caller = RoomCaller(url, token, agent_track=agent_track)
        await caller.connect()
        key = next(self.keys)
        self.callers[key] = caller
        return key

    def _caller(self, request: dict[str, Any]) -> RoomCaller:
        key = request.get("key")
        if not isinstance(key, int) or key not in self.callers:
            raise ValueError(f"no person {key!r}")
        return self.callers[key]

    async def _run(self, request: dict[str, Any]) -> Any:
        op = request.get("op")
        if op == "join":
            return await self.join(request["url"], request["token"], request.get("agent_track"))
        caller = self._caller(request)
        match op:
            case "wait_for_agent":
                return await caller.wait_for_agent(float(request["within_s"]))
            case "say":
                return await self._say(caller, request)
            case "wait_audible":
                return await caller.wait_audible(
                    float(request["after"]), float(request["within_s"])
                )
            case "wait_quiet":
                return await caller.wait_quiet(
                    float(request["quiet_s"]), float(request["within_s"])
                )
            case "first_audible_after":
                return caller.first_audible_after(float(request["after"]))
            case "audible_between":
                return caller.audible_between(float(request["start"]), float(request["end"]))
            case "leave":
                return await self._leave(request["key"])
            case _:
                raise ValueError(f"unknown op {op!r}")

    async def _say(self, caller: RoomCaller, request: dict[str, Any]) -> dict[str, float]:
        spoken = await (await caller.say(base64.b64decode(request["pcm"]), int(request["rate"])))
        return asdict(spoken)

    async def _leave(self, key: int) -> None:
        caller = self.callers.pop(key)
        await caller.aclose()

    async def handle(self, line: bytes) -> None:
        number: Any = None
        try:
            request = json.loads(line)
            number = request["id"]
            self._reply({"id": number, "result": await self._run(request)})
        except TimeoutError as e:
            self._reply({"id": number, "error": str(e) or "timed out", "timeout": True})
        except Exception as e:  # every bad request gets its answer
            self._reply({"id": number, "error": f"{type(e).__name__}: {e}"})

    async def serve(self, requests: asyncio.StreamReader) -> None:
        while line := await requests.readline():
            task = asyncio.create_task(self.handle(line))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        for caller in list(self.callers.values()):
            await caller.aclose()


async def _main(reply_fd: int) -> None:
    loop = asyncio.get_running_loop()
    requests = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(requests), sys.stdin)
    with os.fdopen(reply_fd, "wb", buffering=0) as out:
        await _Host(out).serve(requests)


if __name__ == "__main__":
    # Anything printed goes to stderr; replies have their own pipe.
    os.dup2(2, 1)
    asyncio.run(_main(int(sys.argv[1])))
