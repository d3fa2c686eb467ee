"""A private redis-server for fault tests: started, stopped and restarted by PID.

Each :class:`RedisServer` runs its own ``redis-server`` on a free loopback
port, without persistence, so tests can kill and restart it without touching
the shared Redis at 127.0.0.1:6379.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Final

from tests._processes import free_port, stop_process

__all__ = ["RedisServer", "answers_ping", "redis_server_available"]

_READY_TIMEOUT: Final = 10.0
_POLL_INTERVAL: Final = 0.02


def redis_server_available() -> bool:
    """Return whether a ``redis-server`` executable is on PATH."""
    return shutil.which("redis-server") is not None


def answers_ping(port: int) -> bool:
    """Return whether a Redis server on the loopback ``port`` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One private redis-server process on a fixed loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="typed-channels-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of this server."""
        return f"redis://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``, as error messages name the server."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait (bounded) until it answers PING."""
        if self.running:
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + _READY_TIMEOUT
        for _ in range(int(_READY_TIMEOUT / _POLL_INTERVAL) + 1):
            if answers_ping(self.port):
                return
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} exited with {self._process.returncode} "
                    "before answering PING"
                )
            if time.monotonic() > deadline:
                break
            time.sleep(_POLL_INTERVAL)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING in time")

    def stop(self) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL) and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process)

    def restart(self) -> None:
        """Stop the server and start a fresh, empty one on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its working directory."""
        try:
            self.stop()
        finally:
            self._dir.cleanup()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
