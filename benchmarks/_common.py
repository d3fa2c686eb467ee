"""Shared helpers for the workload scripts: timing, delivery checks, the JSON report.

A workload script is run as a file (``python benchmarks/bench_x.py``), never as
``-m benchmarks.x``: run as a file, only ``benchmarks/`` is put on ``sys.path``,
so ``import channels`` finds whichever package the interpreter has installed
(ours in ``.venv``, upstream in ``.venv-upstream``), never the work tree's by
accident. Sibling modules are imported by their bare names for that reason.

A script prints one JSON object on its last stdout line::

    {"side": {...}, "results": {name: {"value": ..., "unit": ..., ...}}}

``value`` is ``null`` when the workload failed; ``lost`` counts messages that
never arrived or arrived out of order, and ``error`` says what went wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = [
    "DeliveryError",
    "Report",
    "Tracker",
    "measure_rate",
    "message",
    "round_trips",
    "run_suite",
    "side_info",
]

# A workload fails instead of hanging when a message never arrives.
WORKLOAD_TIMEOUT = 60.0


def message(n: int) -> dict[str, Any]:
    """The message every layer workload sends: a type, a short text and its number."""
    return {"type": "chat.message", "text": "hello, world", "n": n}


def round_trips(layer: Any, channel: str, per_batch: int) -> Callable[[], Awaitable[int]]:
    """A batch of ``per_batch`` send+receive round trips on ``channel``, checked in order."""
    count = 0

    async def batch() -> int:
        nonlocal count
        for _ in range(per_batch):
            await layer.send(channel, message(count))
            received = await layer.receive(channel)
            if received["n"] != count:
                raise DeliveryError(1, f"sent #{count}, received {received!r}")
            count += 1
        return per_batch

    return batch


class DeliveryError(Exception):
    """Messages were lost or arrived out of order."""

    def __init__(self, lost: int, detail: str) -> None:
        super().__init__(f"{lost} message(s) lost or out of order: {detail}")
        self.lost = lost


class Tracker:
    """Checks that every stream (one sender to one receiver) arrives complete and in order."""

    def __init__(self) -> None:
        self.next: dict[object, int] = {}
        self.expected = 0
        self.received = 0
        self.disordered = 0
        self.first_problem = ""
        self.done = asyncio.Event()

    def expect(self, count: int) -> None:
        """Announce ``count`` more messages; ``done`` is set once all of them arrived."""
        self.expected += count
        self.done = asyncio.Event()
        if self.received >= self.expected:
            self.done.set()

    def got(self, stream: object, n: int) -> None:
        """Record message number ``n`` of ``stream``; numbers start at 0 and must not skip."""
        want = self.next.get(stream, 0)
        if n != want:
            self.disordered += 1
            if not self.first_problem:
                self.first_problem = f"stream {stream!r}: expected #{want}, got #{n}"
        self.next[stream] = n + 1
        self.received += 1
        if self.received >= self.expected:
            self.done.set()

    async def wait(self, timeout: float = WORKLOAD_TIMEOUT) -> None:
        """Wait until every expected message arrived; raise DeliveryError if not in time."""
        try:
            async with asyncio.timeout(timeout):
                await self.done.wait()
        except TimeoutError:
            raise DeliveryError(
                self.expected - self.received,
                f"{self.expected - self.received} of {self.expected} missing after {timeout}s",
            ) from None
        self.check()

    def check(self) -> None:
        """Raise DeliveryError if anything arrived out of order."""
        if self.disordered:
            raise DeliveryError(self.disordered, self.first_problem)


async def measure_rate(
    batch: Callable[[], Awaitable[int]],
    *,
    clock: Callable[[], float] = time.process_time,
    min_time: float = 0.2,
    max_time: float = 2.0,
    repeats: int = 2,
) -> float:
    """Operations per second of ``batch`` (which returns how many it did): median of repeats.

    Each repeat runs batches until ``min_time`` of ``clock`` passed, so a slow
    side runs fewer operations instead of taking forever; one batch runs
    first, untimed, as warm-up.
    """
    await batch()
    rates: list[float] = []
    budget_end = clock() + max_time * repeats
    for _ in range(repeats):
        ops = 0
        start = clock()
        while True:
            ops += await batch()
            elapsed = clock() - start
            if elapsed >= min_time:
                break
        rates.append(ops / elapsed)
        if clock() > budget_end:
            break
    return statistics.median(rates)


def side_info() -> dict[str, str]:
    """Which ``channels`` this interpreter imported, to tell the sides apart."""
    import channels

    info = {
        "channels_file": str(channels.__file__),
        "channels_version": str(getattr(channels, "__version__", "?")),
        "python": sys.executable,
    }
    with contextlib.suppress(PackageNotFoundError):
        info["channels_redis_version"] = version("channels-redis")
    return info


class Report:
    """Collects workload results and prints them as one JSON line."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}

    def add(
        self,
        name: str,
        value: float | None,
        unit: str,
        *,
        higher_is_better: bool = True,
        lost: int = 0,
        error: str | None = None,
        **extra: float,
    ) -> None:
        """Record one workload's figure."""
        self.results[name] = {
            "value": value,
            "unit": unit,
            "higher_is_better": higher_is_better,
            "lost": lost,
            "error": error,
            **extra,
        }

    async def run(
        self,
        name: str,
        unit: str,
        body: Callable[[], Awaitable[float]],
        *,
        higher_is_better: bool = True,
    ) -> None:
        """Run one workload; a loss or any exception is recorded, never raised."""
        try:
            value = await body()
        except DeliveryError as exc:
            self.add(
                name, None, unit, higher_is_better=higher_is_better, lost=exc.lost, error=str(exc)
            )
        except Exception as exc:  # a failing side is a result, not a crash
            detail = "".join(traceback.format_exception_only(exc)).strip()
            self.add(
                name, None, unit, higher_is_better=higher_is_better, lost=-1, error=detail[:500]
            )
        else:
            self.add(name, value, unit, higher_is_better=higher_is_better)
        sys.stderr.write(f"  [{os.getpid()}] {name}: {self.results[name]}\n")

    def emit(self) -> None:
        """Print the report as the last line of stdout."""
        print(json.dumps({"side": side_info(), "results": self.results}), flush=True)


Suite = Callable[["Report"], Awaitable[None]]


def run_suite(suite: Suite, limits: Suite | None = None) -> None:
    """Run ``suite`` (``limits`` instead when given ``--limits``) and print its report."""
    report = Report()
    chosen = limits if limits is not None and "--limits" in sys.argv else suite
    asyncio.run(chosen(report))
    report.emit()
