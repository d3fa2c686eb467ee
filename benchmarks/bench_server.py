"""A real server: ``asgi_app`` under uvicorn, driven by ``websockets`` clients.

uvicorn runs in a child process of this interpreter (so it imports this
side's ``channels``) with the same options on both sides: asyncio loop, h11,
the websockets-sansio protocol, one worker. The clients run here.

* echo: ``CLIENTS`` connections at once, each doing ``ROUND_TRIPS`` sequential
  round trips; p50/p99 latency, wall throughput and the server's CPU time per
  round trip (from ``/proc``). The clients share the 2 cores with the server
  and usually saturate first, so the figure the target uses is round trips
  per second of *server* CPU: the server's capacity, which the clients do not
  cap.
* broadcast: ``CLIENTS`` members; one sends, all receive; broadcasts per
  server CPU second and p50/p99 latency from the send to each receipt.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from _common import DeliveryError, Report, Tracker, run_suite
from websockets.asyncio.client import ClientConnection, connect

__all__: list[str] = []  # a script: run as a file by benchmarks.run

HERE = Path(__file__).resolve().parent
CLIENTS = int(os.environ.get("BENCH_SERVER_CLIENTS", "200"))
ROUND_TRIPS = int(os.environ.get("BENCH_SERVER_ROUND_TRIPS", "100"))
BROADCASTS = int(os.environ.get("BENCH_SERVER_BROADCASTS", "30"))
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / TICKS


class Server:
    """uvicorn serving ``asgi_app`` in a child process."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "asgi_app:application",
                "--app-dir",
                str(HERE),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--loop",
                "asyncio",
                "--http",
                "h11",
                "--ws",
                "websockets-sansio",
                "--lifespan",
                "off",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=HERE,
        )

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return
        raise RuntimeError("uvicorn did not listen within 30s")

    def cpu(self) -> float:
        return _cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _connect_all(url: str) -> list[ClientConnection]:
    clients: list[ClientConnection] = []
    # In batches: 200 simultaneous handshakes overflow a small listen backlog.
    for start in range(0, CLIENTS, 50):
        batch = [connect(url, max_queue=None) for _ in range(start, min(CLIENTS, start + 50))]
        clients += await asyncio.gather(*batch)
    return clients


async def echo(server: Server, report: Report) -> float:
    clients = await _connect_all(f"ws://127.0.0.1:{server.port}/echo/")
    latencies: list[float] = []

    async def client(connection: ClientConnection) -> None:
        for n in range(ROUND_TRIPS):
            start = time.perf_counter()
            await connection.send(str(n))
            got = await connection.recv()
            latencies.append(time.perf_counter() - start)
            if got != str(n):
                raise DeliveryError(1, f"sent #{n}, echoed {got!r}")

    try:
        cpu_before, start = server.cpu(), time.perf_counter()
        try:
            async with asyncio.timeout(120):
                await asyncio.gather(*(client(connection) for connection in clients))
        except TimeoutError:
            lost = CLIENTS * ROUND_TRIPS - len(latencies)
            raise DeliveryError(lost, f"{lost} echoes missing after 120s") from None
        wall, cpu = time.perf_counter() - start, server.cpu() - cpu_before
    finally:
        await asyncio.gather(*(connection.close() for connection in clients))
    total = CLIENTS * ROUND_TRIPS
    report.add("server.echo_wall", total / wall, "round trips/s")
    report.add("server.echo_p50", _percentile(latencies, 0.5) * 1e3, "ms", higher_is_better=False)
    report.add("server.echo_p99", _percentile(latencies, 0.99) * 1e3, "ms", higher_is_better=False)
    return total / cpu


async def broadcast(server: Server, report: Report) -> float:
    clients = await _connect_all(f"ws://127.0.0.1:{server.port}/broadcast/")
    latencies: list[float] = []
    sent_at: list[float] = []
    tracker = Tracker()

    async def member(index: int, connection: ClientConnection) -> None:
        for _ in range(BROADCASTS):
            got = await connection.recv()
            now = time.perf_counter()
            n = int(got)
            latencies.append(now - sent_at[n])
            tracker.got(index, n)

    members = [asyncio.create_task(member(i, c)) for i, c in enumerate(clients)]
    try:
        cpu_before, start = server.cpu(), time.perf_counter()
        for n in range(BROADCASTS):
            tracker.expect(CLIENTS)
            sent_at.append(time.perf_counter())
            await clients[0].send(str(n))
            await tracker.wait(30)
        wall, cpu = time.perf_counter() - start, server.cpu() - cpu_before
    finally:
        for task in members:
            task.cancel()
        await asyncio.gather(*members, return_exceptions=True)
        await asyncio.gather(*(connection.close() for connection in clients))
    report.add(f"server.broadcast_{CLIENTS}_wall", BROADCASTS / wall, "broadcasts/s")
    report.add(
        f"server.broadcast_{CLIENTS}_p50",
        _percentile(latencies, 0.5) * 1e3,
        "ms",
        higher_is_better=False,
    )
    report.add(
        f"server.broadcast_{CLIENTS}_p99",
        _percentile(latencies, 0.99) * 1e3,
        "ms",
        higher_is_better=False,
    )
    return BROADCASTS / cpu


async def run(report: Report) -> None:
    workloads = (
        ("server.echo", "round trips/server-CPU-s", echo),
        (f"server.broadcast_{CLIENTS}", "broadcasts/server-CPU-s", broadcast),
    )
    for name, unit, body in workloads:
        server = Server()
        try:
            await server.wait_ready()
            await report.run(name, unit, partial(body, server, report))
        finally:
            server.stop()


if __name__ == "__main__":
    run_suite(run)
