"""Side-by-side benchmarks: this package against upstream channels / channels-redis.

Run: ``.venv/bin/python -m benchmarks.run [--reps N] [--only SUITE,...]`` from
the repository root (``make bench``). Needs ``.venv`` (ours), ``.venv-upstream``
(``make upstream``: channels 4.3, channels-redis 4.3, uvicorn, websockets,
daphne), matplotlib in the interpreter running this, and Redis at
``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379``) for the Redis suite.

Every suite is a script in ``benchmarks/`` that both sides' interpreters run
as a file, so each imports its own ``channels`` (checked: the run stops if
ours does not come from this tree or upstream's does). Within each repetition
the two sides alternate order (ours first, then upstream first, ...), so a
drift of the machine's speed falls on both; the table shows the median over
repetitions. The limits (bare asyncio, ``copy.deepcopy``, raw redis-py) run in
our interpreter in every repetition too.

The cluster suite runs ours only (channels-redis has no cluster mode) on a
three-master Redis Cluster it starts itself (needs ``redis-server`` and
``redis-cli``); in its rows the "limit" column is the same workload on one
redis-server, so ours/limit reads "cluster / one server".

A side that lost or reordered a message, or raised, in any repetition is shown
as FAIL with the count, never as a speed. Targets get PASS/FAIL; a target
whose figures are missing is FAIL.

Output: the table on stdout, ``benchmarks/results/results-<time>.json`` (every
sample) and ``benchmarks/results/ratios-<time>.png`` (ours/upstream per
workload, as a speed-up: >1 means ours is better), plus ``latest.json`` and
``latest.png``.

Scale: the real-server echo runs 200 clients x 100 round trips (not 200) to
keep a full run near 6 minutes on 2 cores; set BENCH_SERVER_ROUND_TRIPS=200
for the full size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SIDES = {
    "ours": Path(os.environ.get("BENCH_OURS_PYTHON", ROOT / ".venv" / "bin" / "python")),
    "upstream": Path(
        os.environ.get("BENCH_UPSTREAM_PYTHON", ROOT / ".venv-upstream" / "bin" / "python")
    ),
}
# suite name -> (script, whether a --limits run exists, whether upstream runs it)
SUITES: dict[str, tuple[str, bool, bool]] = {
    "inmemory": ("bench_inmemory.py", True, True),
    "redis": ("bench_redis.py", True, True),
    "consumers": ("bench_consumers.py", False, True),
    "server": ("bench_server.py", False, True),
    # channels-redis has no cluster mode; its "limit" is our layer on one server.
    "cluster": ("bench_cluster.py", True, False),
}
SUITE_TIMEOUT = 600


@dataclass
class Samples:
    """Every repetition's figure for one workload on one side."""

    unit: str = ""
    higher_is_better: bool = True
    values: list[float] = field(default_factory=list[float])
    failures: list[str] = field(default_factory=list[str])
    lost: int = 0

    @property
    def median(self) -> float | None:
        if self.failures or not self.values:
            return None
        return statistics.median(self.values)

    def cell(self) -> str:
        if self.failures:
            lost = f" lost {self.lost}" if self.lost > 0 else ""
            return f"FAIL{lost}"
        return "-" if self.median is None else _fmt(self.median)


Table = dict[str, dict[str, Samples]]  # workload -> side ("ours", "upstream", "limit") -> samples


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _run_script(python: Path, script: str, limits: bool) -> tuple[dict[str, Any], float]:
    command = [str(python), str(HERE / script), *(["--limits"] if limits else [])]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["DJANGO_SETTINGS_MODULE"] = "django_settings"
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
            timeout=SUITE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"crash": f"timed out after {SUITE_TIMEOUT}s"}, time.perf_counter() - start
    elapsed = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]), elapsed
    except (IndexError, json.JSONDecodeError):
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        return {"crash": f"exit {done.returncode}, no report:\n{tail}"}, elapsed


def _check_side(side: str, info: dict[str, str]) -> None:
    ours = Path(info["channels_file"]).resolve().is_relative_to(ROOT / "channels")
    if ours != (side in ("ours", "limit")):
        raise SystemExit(f"the {side} interpreter imported channels from {info['channels_file']}")


def _record(table: Table, suite: str, side: str, report: dict[str, Any]) -> None:
    if "crash" in report:
        samples = table.setdefault(f"{suite}.(suite)", {}).setdefault(side, Samples())
        samples.failures.append(report["crash"])
        print(f"    {suite} on {side} crashed: {report['crash']}")
        return
    _check_side(side, report["side"])
    for name, result in report["results"].items():
        samples = table.setdefault(name, {}).setdefault(side, Samples())
        samples.unit = result["unit"]
        samples.higher_is_better = result["higher_is_better"]
        if result["error"] is not None:
            samples.failures.append(result["error"])
            samples.lost = max(samples.lost, result["lost"])
        else:
            samples.values.append(result["value"])


def collect(reps: int, suites: list[str]) -> Table:
    table: Table = {}
    for rep in range(reps):
        order = ["ours", "upstream"] if rep % 2 == 0 else ["upstream", "ours"]
        for suite in suites:
            script, has_limits, upstream_too = SUITES[suite]
            runs = [(side, SIDES[side], False) for side in order if upstream_too or side == "ours"]
            if has_limits:
                runs.append(("limit", SIDES["ours"], True))
            for side, python, limits in runs:
                report, elapsed = _run_script(python, script, limits)
                print(f"  rep {rep + 1}/{reps} {suite:<9} {side:<8} {elapsed:6.1f}s", flush=True)
                _record(table, suite, side, report)
    return table


def _ratio(table: Table, name: str, over: str) -> float | None:
    row = table.get(name, {})
    ours, other = row.get("ours"), row.get(over)
    if ours is None or other is None or ours.median is None or other.median is None:
        return None
    if other.median == 0:
        return None
    return ours.median / other.median


def _speedup(table: Table, name: str) -> float | None:
    """ours/upstream turned into 'how many times better' (inverted where lower is better)."""
    ratio = _ratio(table, name, "upstream")
    if ratio is None or ratio == 0:
        return None
    return ratio if table[name]["ours"].higher_is_better else 1 / ratio


@dataclass
class Target:
    label: str
    check: Callable[[Table], tuple[float | None, bool]]
    threshold: str
    needs: str  # the workload whose suite must have run; else the target is skipped


def _at_least(label: str, name: str, over: str, minimum: float) -> Target:
    """The target: the ratio ours/``over`` on workload ``name`` is at least ``minimum``."""

    def check(table: Table) -> tuple[float | None, bool]:
        value = _ratio(table, name, over)
        return value, value is not None and value >= minimum

    return Target(label, check, f">= {minimum:g}", name)


def _idle_check(table: Table) -> tuple[float | None, bool]:
    few = table.get("mem.idle_10", {}).get("ours")
    many = table.get("mem.idle_100000", {}).get("ours")
    if few is None or many is None or few.median is None or many.median is None:
        return None, False
    slowdown = few.median / many.median  # rates: time with many idle / time with few
    return slowdown, slowdown <= 1.5


def _works(table: Table) -> tuple[float | None, bool]:
    ours = table.get("redis.concurrent_100", {}).get("ours")
    ok = ours is not None and not ours.failures and bool(ours.values)
    return (1.0 if ok else 0.0), ok


def _pubsub_lossless(table: Table) -> tuple[float | None, bool]:
    rows = [
        row["ours"] for name, row in table.items() if name.startswith("pubsub.") and "ours" in row
    ]
    ok = bool(rows) and all(not samples.failures and samples.values for samples in rows)
    return (1.0 if ok else 0.0), ok


def _server_echo(table: Table) -> tuple[float | None, bool]:
    speed = _ratio(table, "server.echo", "upstream")
    p99 = _ratio(table, "server.echo_p99", "upstream")
    ok = speed is not None and p99 is not None and speed >= 1.3 and p99 <= 1.0
    return speed, ok


TARGETS = [
    _at_least("in-memory round trip vs upstream", "mem.round_trip", "upstream", 3),
    _at_least("in-memory fan-out 1,000 vs upstream", "mem.fanout_1000", "upstream", 30),
    Target("receive: 100,000 idle / 10 idle (time)", _idle_check, "<= 1.5", "mem.idle_10"),
    _at_least("Redis round trip vs channels-redis", "redis.round_trip", "upstream", 2),
    _at_least("Redis round trip vs raw redis-py", "redis.round_trip", "limit", 0.7),
    _at_least(
        "Redis fan-out 1,000 normal vs channels-redis", "redis.fanout_1000_normal", "upstream", 5
    ),
    Target("Redis 100 concurrent receivers work", _works, "no loss", "redis.concurrent_100"),
    _at_least("pub/sub round trip vs channels-redis", "pubsub.round_trip", "upstream", 1.2),
    _at_least("pub/sub fan-out 1,000 vs channels-redis", "pubsub.fanout_1000", "upstream", 2),
    _at_least("pub/sub overload, delivered vs channels-redis", "pubsub.overload", "upstream", 1),
    Target("pub/sub workloads lose nothing", _pubsub_lossless, "no loss", "pubsub.round_trip"),
    _at_least("consumer async echo vs upstream", "consumer.async_echo", "upstream", 2),
    _at_least("consumer sync echo vs upstream", "consumer.sync_echo", "upstream", 1.5),
    _at_least("consumer broadcast to 200 vs upstream", "consumer.broadcast_200", "upstream", 3),
    Target(
        "uvicorn echo vs upstream (server CPU), p99 <= upstream",
        _server_echo,
        ">= 1.3",
        "server.echo",
    ),
    _at_least("cluster round trip vs one server", "cluster.round_trip", "limit", 0.8),
    _at_least(
        "cluster fan-out 1,000 normal vs one server", "cluster.fanout_1000_normal", "limit", 1
    ),
    _at_least(
        "cluster fan-out 1,000 specific vs one server", "cluster.fanout_1000_specific", "limit", 1
    ),
]


def render(table: Table, reps: int) -> str:
    lines = [
        f"medians of {reps} repetition(s); rates: higher is better; B and ms: lower is better",
        f"{'workload':<30} {'unit':<26} {'ours':>10} {'upstream':>10} {'ours/up':>8} "
        f"{'limit':>10} {'ours/lim':>8}",
    ]
    for name, row in table.items():
        any_side = next(iter(row.values()))
        ours, upstream, limit = (row.get(side) for side in ("ours", "upstream", "limit"))
        up_ratio, lim_ratio = _ratio(table, name, "upstream"), _ratio(table, name, "limit")
        lines.append(
            f"{name:<30} {any_side.unit:<26} "
            f"{ours.cell() if ours else '':>10} {upstream.cell() if upstream else '':>10} "
            f"{_fmt(up_ratio) if up_ratio is not None else '':>8} "
            f"{limit.cell() if limit else '':>10} "
            f"{_fmt(lim_ratio) if lim_ratio is not None else '':>8}"
        )
    failures = [
        f"  {name} [{side}]: {samples.failures[0]}"
        for name, row in table.items()
        for side, samples in row.items()
        if samples.failures
    ]
    if failures:
        lines += ["", f"failures (first error of each; {reps} repetition(s)):", *failures]
    lines += ["", "targets:"]
    for target in TARGETS:
        value, ok = target.check(table)
        shown = "-" if value is None else f"{value:.2f}"
        verdict = "SKIP" if target.needs not in table else "PASS" if ok else "FAIL"
        lines.append(f"  {verdict}  {target.label:<56} {shown:>8}  (target {target.threshold})")
    return "\n".join(lines)


# Speed-up targets drawn on the chart: workload -> minimum ours/upstream.
CHART_TARGETS = {
    "mem.round_trip": 3.0,
    "mem.fanout_1000": 30.0,
    "redis.round_trip": 2.0,
    "redis.fanout_1000_normal": 5.0,
    "pubsub.round_trip": 1.2,
    "pubsub.fanout_1000": 2.0,
    "pubsub.overload": 1.0,
    "consumer.async_echo": 2.0,
    "consumer.sync_echo": 1.5,
    "consumer.broadcast_200": 3.0,
    "server.echo": 1.3,
}


def _failed_side(row: dict[str, Samples]) -> str | None:
    failed = [side for side in ("ours", "upstream") if side in row and row[side].failures]
    return " and ".join(failed) if failed else None


def chart(table: Table, path: Path, reps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [
        name
        for name, row in table.items()
        if _speedup(table, name) is not None or _failed_side(row) is not None
    ]
    values = [_speedup(table, name) or 1.0 for name in names]
    failed = [_failed_side(table[name]) for name in names]
    figure, axes = plt.subplots(figsize=(10, 0.32 * len(names) + 1.5))
    colours = [
        "tab:gray" if fail else "tab:green" if value >= 1 else "tab:red"
        for value, fail in zip(values, failed, strict=True)
    ]
    axes.barh(names, values, color=colours)
    axes.set_xscale("log")
    axes.axvline(1.0, color="black", linewidth=0.8)
    for index, name in enumerate(names):
        if name in CHART_TARGETS:
            axes.plot([CHART_TARGETS[name]] * 2, [index - 0.45, index + 0.45], color="blue")
    axes.invert_yaxis()
    axes.set_xlabel(
        "ours vs upstream, x better (log scale; memory and latency inverted); "
        "blue tick: target; grey: a side failed"
    )
    axes.set_title(f"typed-channels vs channels 4.3 / channels-redis 4.3 (median of {reps})")
    for index, (value, fail) in enumerate(zip(values, failed, strict=True)):
        label = f" {fail} FAILED" if fail else f" {value:.2f}x"
        axes.text(value, index, label, va="center", fontsize=7)
    if values:
        axes.set_xlim(min(0.5, min(values) / 1.5), max([*values, *CHART_TARGETS.values()]) * 3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=4, help="repetitions per side (default 4)")
    parser.add_argument("--only", default=",".join(SUITES), help="comma-separated suites")
    args = parser.parse_args(argv)
    suites = [suite for suite in args.only.split(",") if suite]
    unknown = [suite for suite in suites if suite not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown!r}; choose from {sorted(SUITES)!r}")
    for side, python in SIDES.items():
        if not python.exists():
            parser.error(f"no interpreter for {side} at {python} (make upstream?)")

    started = time.strftime("%Y%m%d-%H%M%S")
    began = time.perf_counter()
    table = collect(args.reps, suites)
    text = render(table, args.reps)
    print()
    print(text)
    print(f"\ntotal {time.perf_counter() - began:.0f}s")

    RESULTS.mkdir(exist_ok=True)
    data = {
        "started": started,
        "reps": args.reps,
        "suites": suites,
        "workloads": {
            name: {
                side: {
                    "unit": samples.unit,
                    "higher_is_better": samples.higher_is_better,
                    "values": samples.values,
                    "median": samples.median,
                    "failures": samples.failures,
                    "lost": samples.lost,
                }
                for side, samples in row.items()
            }
            for name, row in table.items()
        },
        "targets": {
            target.label: dict(zip(("value", "pass"), target.check(table), strict=True))
            for target in TARGETS
            if target.needs in table
        },
    }
    for stem in (f"results-{started}", "latest"):
        (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=2))
    (RESULTS / f"table-{started}.txt").write_text(text + "\n")
    chart(table, RESULTS / f"ratios-{started}.png", args.reps)
    chart(table, RESULTS / "latest.png", args.reps)
    print(f"wrote {RESULTS}/results-{started}.json and ratios-{started}.png")


if __name__ == "__main__":
    main()
