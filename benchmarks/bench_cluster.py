"""Our Redis layer on a Redis Cluster, and (``--limits``) the same workloads on one server.

Ours only: channels_redis has no cluster mode. The script starts its own
servers on free loopback ports, with the test suite's fixtures
(``tests/layers/redis/_cluster.py``): a cluster of three masters (no replicas:
on a small machine they would take the masters' CPU, which the one server
does not share), or, with ``--limits``, one redis-server with the same options.
So the "limit" column of these rows is not a bound: it is the same workload
on one server, and ours/limit is cluster/one server.

The workloads are ``bench_redis``'s: round trips on a normal and on a
process-specific channel, and ``group_send`` to 1,000 members, normal
channels (spread over every master's slots) or process-specific ones (the
keys of 10 layer objects, as 10 processes would have).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from _common import Report, run_suite
from bench_redis import _close, _fanout, layer_fanout, layer_round_trip, message

__all__: list[str] = []  # a script: run as a file by benchmarks.run

sys.path.append(str(Path(__file__).resolve().parent.parent))  # for the tests' server fixtures

from tests.layers.redis._cluster import ClusterSet, RedisProcess

MEMBERS = 1_000
PROCESSES = 10


def _factory(hosts: list[Any]) -> Callable[[], Any]:
    from channels.layers.redis import RedisChannelLayer

    def make() -> Any:
        return RedisChannelLayer(hosts=hosts, prefix=f"bench-{uuid.uuid4().hex[:12]}")

    return make


async def fanout_processes(make: Callable[[], Any]) -> float:
    """group_send to MEMBERS process-specific channels of PROCESSES layer objects."""
    sender = make()
    # One prefix for all, as processes sharing one configuration have.
    layers = [sender] + [
        type(sender)(hosts=sender.hosts, prefix=sender.prefix) for _ in range(PROCESSES - 1)
    ]
    owner: dict[str, Any] = {}
    for index in range(MEMBERS):
        layer = layers[index % PROCESSES]
        owner[await layer.new_channel()] = layer
    for name in owner:
        await sender.group_add("room", name)

    async def group_send(n: int) -> None:
        await sender.group_send("room", message(n))

    async def receive(name: str) -> dict[str, Any]:
        return dict(await owner[name].receive(name))

    try:
        return await _fanout(MEMBERS, list(owner), group_send, receive, 4)
    finally:
        await _close(sender)
        for layer in layers[1:]:
            await layer.close()


async def run_workloads(report: Report, make: Callable[[], Any]) -> None:
    await report.run("cluster.round_trip", "ops/s", partial(layer_round_trip, False, make))
    await report.run("cluster.round_trip_specific", "ops/s", partial(layer_round_trip, True, make))
    await report.run(
        f"cluster.fanout_{MEMBERS}_normal", "sends/s", partial(layer_fanout, MEMBERS, False, make)
    )
    await report.run(
        f"cluster.fanout_{MEMBERS}_specific", "sends/s", partial(fanout_processes, make)
    )


async def on_cluster(report: Report) -> None:
    with ClusterSet(replicas=0) as cluster:
        await run_workloads(report, _factory([{"cluster": cluster.startup_nodes}]))


async def on_one_server(report: Report) -> None:
    server = RedisProcess("bench-single")
    try:
        server.start("--save", "", "--appendonly", "no")
        await run_workloads(report, _factory([server.url]))
    finally:
        server.close()


if __name__ == "__main__":
    run_suite(on_cluster, on_one_server)
