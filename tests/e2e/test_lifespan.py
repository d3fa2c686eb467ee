"""Lifespan hooks under uvicorn, hypercorn and runworker, each a real process stopped by PID."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests._processes import free_port, stop_process
from tests.e2e._servers import HOST, REPO, server_command, serving
from tests.e2e.lifespan_app import FAILURE

pytestmark = pytest.mark.slow

APP = "tests.e2e.lifespan_app:application"
LIFESPAN_SERVERS = ("uvicorn", "hypercorn")
# Bounds on waiting for a process, never sleeps: a hung server fails the test.
_EXIT_TIMEOUT = 60.0
_RECEIVE_TIMEOUT = 10.0


def lifespan_environment(journal: Path, *, fail: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO),
        DJANGO_SETTINGS_MODULE="tests.e2e.lifespan_app",
        LIFESPAN_JOURNAL=str(journal),
        PYTHONUNBUFFERED="1",
    )
    if fail:
        env["LIFESPAN_FAIL"] = "1"
    return env


def journal_lines(journal: Path) -> list[list[str]]:
    return [line.split() for line in journal.read_text().splitlines()]


async def token_from(port: int) -> str:
    async with connect(f"ws://{HOST}:{port}/anywhere/") as websocket:
        token = await asyncio.wait_for(websocket.recv(), timeout=_RECEIVE_TIMEOUT)
    assert isinstance(token, str)
    return token


@pytest.mark.parametrize("server", LIFESPAN_SERVERS)
class TestServers:
    async def test_hooks_run_once_each_and_every_connection_sees_the_state(
        self, server: str, tmp_path: Path
    ) -> None:
        journal = tmp_path / "journal"
        with serving(server, lifespan_environment(journal), tmp_path, APP, REPO) as running:
            tokens = [await token_from(running.port) for _ in range(3)]
            [(event, pid, token)] = journal_lines(journal)
            assert (event, tokens) == ("startup", [token] * 3)
        # serving() stopped the server with SIGTERM and waited for it to exit; uvicorn
        # re-raises the signal once it has shut down, hypercorn exits 0.
        exited = {"uvicorn": -signal.SIGTERM, "hypercorn": 0}[server]
        assert running.process.returncode == exited, running.log.read_text()
        assert journal_lines(journal) == [["startup", pid, token], ["shutdown", pid]]
        output = running.log.read_text()
        assert "Traceback" not in output
        assert "error" not in output.lower()

    def test_a_failing_startup_hook_stops_the_server_saying_why(
        self, server: str, tmp_path: Path
    ) -> None:
        journal = tmp_path / "journal"
        port = free_port(HOST)
        process = subprocess.Popen(
            server_command(server, port, APP),
            cwd=REPO,
            env=lifespan_environment(journal, fail=True),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            output, _ = process.communicate(timeout=_EXIT_TIMEOUT)
        finally:
            stop_process(process)
        text = output.decode(errors="replace")
        assert f"lifespan startup hook journal_hook raised RuntimeError: {FAILURE}" in text
        [(event, _, _)] = journal_lines(journal)
        assert event == "startup"
        if server == "uvicorn":
            assert process.returncode == 3, text  # uvicorn's code for a failed startup


class TestRunworker:
    async def test_sigterm_runs_the_shutdown_hooks(self, tmp_path: Path) -> None:
        journal = tmp_path / "journal"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "django",
            "runworker",
            "jobs",
            cwd=REPO,
            env=lifespan_environment(journal),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            ready = await asyncio.wait_for(process.stdout.readline(), timeout=_EXIT_TIMEOUT)
            assert ready.startswith(b"Worker listening on jobs")
            # The worker listens only once startup has completed.
            [(event, pid, token)] = journal_lines(journal)
            assert (event, pid) == ("startup", str(process.pid))
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), _EXIT_TIMEOUT)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert (process.returncode, stdout, stderr) == (0, b"Worker stopped.\n", b"")
        assert journal_lines(journal) == [["startup", pid, token], ["shutdown", pid]]

    def test_a_failing_startup_hook_is_a_command_error(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "django", "runworker", "jobs"],
            cwd=REPO,
            env=lifespan_environment(tmp_path / "journal", fail=True),
            capture_output=True,
            text=True,
            timeout=_EXIT_TIMEOUT,
            check=False,
        )
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr.startswith(
            "CommandError: application startup failed: lifespan startup hook journal_hook "
            f"raised RuntimeError: {FAILURE}\n"
        )
