"""Synthesis threads fed earliest-deadline-first.

A piece's deadline is the moment its audio will be needed: for the first piece of a stream,
now; for a later one, the stream's start plus the audio already sent. A stream that is
seconds ahead of its listener therefore waits while a new stream gets its first audio out,
which is what keeps both first-audio latency and real-time playback under load. (A FIFO pool
would make every new stream queue behind the whole backlog of the streams already ahead.)

Blocking jobs run on plain threads (onnxruntime releases the GIL during inference). A caller
that is cancelled drops its job if it has not started, and otherwise sets the job's
`RunOptions.terminate`, which onnxruntime checks between kernels.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import onnxruntime  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(eq=False)
class _Job(Generic[T]):
    work: Callable[[], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop
    started: bool = False
    dropped: bool = False


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class PoolClosed(RuntimeError):
    """The pool was closed (the service is stopping) before the job could run."""


class InferencePool:
    def __init__(self, workers: int) -> None:
        self._queue: queue.PriorityQueue[tuple[float, int, _Job[Any] | None]] = (
            queue.PriorityQueue()
        )
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"piper-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return self._running

    async def run(
        self, work: Callable[[], T], run_options: onnxruntime.RunOptions, *, deadline: float
    ) -> T:
        """`work()` on a synthesis thread, ordered by `deadline` (any monotonic clock value;
        earlier runs first, ties in arrival order)."""
        if self._closed:
            raise PoolClosed("inference pool is closed")
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(work, loop.create_future(), loop)
        with self._lock:
            self._waiting += 1
        self._queue.put((deadline, next(self._order), job))
        try:
            return await job.future
        except asyncio.CancelledError:
            with self._lock:
                if not job.started:
                    job.dropped = True
                    self._waiting -= 1
            # Harmless when the job has not started (it never will) or has finished.
            run_options.terminate = True
            raise

    def _work(self) -> None:
        while True:
            _, _, job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.dropped:
                    continue
                job.started = True
                self._waiting -= 1
                self._running += 1
            result: Any = None
            error: BaseException | None = None
            try:
                result = job.work()
            except BaseException as exc:  # handed to the awaiting coroutine, not lost here
                error = exc
            finally:
                with self._lock:
                    self._running -= 1
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)
            except RuntimeError:
                log.debug("event loop closed before an inference result was delivered")

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop taking jobs, drop the queued ones (their callers are being cancelled by the
        shutdown anyway) and wait for the threads to finish the inference they are in. A
        daemon thread still inside onnxruntime when the interpreter finalizes is ended with
        pthread_exit, whose unwinding through onnxruntime's C++ aborts the process (seen once
        as SIGABRT on SIGTERM before this join was added)."""
        self._closed = True
        with self._lock:
            while True:
                try:
                    _, _, job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None and not job.dropped:
                    job.dropped = True
                    self._waiting -= 1
                    # Its caller would otherwise wait for ever on a job nobody will run.
                    closed = PoolClosed("inference pool closed before this job ran")
                    job.loop.call_soon_threadsafe(_settle, job.future, None, closed)
        for _ in self._threads:
            self._queue.put((float("inf"), next(self._order), None))
        await asyncio.to_thread(self._join, timeout_s)

    def _join(self, timeout_s: float) -> None:
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("synthesis thread %s still running at shutdown", thread.name)
