"""Run the chat demo, or another app, under a real ASGI server: a subprocess on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests._processes import free_port, stop_process

__all__ = [
    "CHAT_APP",
    "CHAT_DIR",
    "HOST",
    "REPO",
    "SERVERS",
    "ChatServer",
    "chat_environment",
    "migrate",
    "server_command",
    "serving",
]

REPO = Path(__file__).resolve().parents[2]
CHAT_DIR = REPO / "examples" / "chat"
CHAT_APP = "chat_project.asgi:application"
HOST = "127.0.0.1"
SERVERS = ("daphne", "uvicorn", "hypercorn")

# The bound on waiting for a server to listen.
_START_TIMEOUT = 30.0
# Between two connection attempts the poll waits on the process itself, so an
# early exit is noticed at once.
_POLL_INTERVAL = 0.05
# Settings the demo reads from the environment; each test chooses its own.
_DEMO_VARIABLES = ("REDIS_URL", "CHAT_REDIS_PREFIX", "CHAT_DATABASE", "CHAT_DEBUG")


@dataclass(frozen=True)
class ChatServer:
    """A running server: which one, where it listens, and its log."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def room_url(self, room: str) -> str:
        return f"{self.http_url}/chat/{room}/"

    def websocket_url(self, room: str) -> str:
        return f"ws://{HOST}:{self.port}/ws/chat/{room}/"


def chat_environment(database: Path, **settings: str) -> dict[str, str]:
    """Return the demo's environment: its settings module, ``database`` and ``settings``."""
    env = {key: value for key, value in os.environ.items() if key not in _DEMO_VARIABLES}
    env.update(
        PYTHONPATH=str(CHAT_DIR),
        DJANGO_SETTINGS_MODULE="chat_project.settings",
        CHAT_DATABASE=str(database),
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


def migrate(env: Mapping[str, str]) -> None:
    """Create the demo's tables (sessions live in the database)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=CHAT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed ({result.returncode}):\n{result.stderr}")


def server_command(server: str, port: int, app: str = CHAT_APP) -> list[str]:
    """Return the command line that serves ``app`` (``module:attribute``) with ``server``."""
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-b", HOST, "-p", str(port), app]
    if server == "uvicorn":
        # Lifespan on: an app that cannot start must stop the server.
        args = ["--host", HOST, "--port", str(port), "--lifespan", "on"]
        return [sys.executable, "-m", "uvicorn", *args, app]
    if server == "hypercorn":
        return [sys.executable, "-m", "hypercorn", "--bind", f"{HOST}:{port}", app]
    raise ValueError(f"server must be one of {SERVERS!r}; got {server!r}")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def _wait_until_listening(server: ChatServer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while not _listening(server.port):
        try:
            code = server.process.wait(timeout=_POLL_INTERVAL)
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{server.name} did not listen on port {server.port} within "
                    f"{_START_TIMEOUT}s:\n{_tail(server.log)}"
                ) from None
        else:
            raise RuntimeError(
                f"{server.name} exited with {code} before listening:\n{_tail(server.log)}"
            )


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def serving(
    server: str,
    env: Mapping[str, str],
    log_dir: Path,
    app: str = CHAT_APP,
    cwd: Path = CHAT_DIR,
) -> Generator[ChatServer, None, None]:
    """Serve ``app`` (the demo) with ``server`` on a free port until the block ends; stop it."""
    port = free_port(HOST)
    log = log_dir / f"{server}-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            server_command(server, port, app), cwd=cwd, env=dict(env), stdout=output, stderr=output
        )
    try:
        running = ChatServer(server, port, process, log)
        _wait_until_listening(running)
        yield running
    finally:
        stop_process(process)
