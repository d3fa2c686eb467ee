"""Subprocesses the tests start themselves: a free loopback port, and a stop by PID."""

from __future__ import annotations

import socket
import subprocess
from typing import Final

__all__ = ["free_port", "stop_process"]

_STOP_TIMEOUT: Final = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` (SIGTERM, then SIGKILL after a bound) and wait for it to exit."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_STOP_TIMEOUT)
