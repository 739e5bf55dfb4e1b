"""bench/_common.py's wait for a child process to accept connections."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _common import SetupError, free_port, wait_accepting

LISTEN = (
    "import socket, sys, time\n"
    "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
    "time.sleep(30)\n"
)


def test_returns_once_the_child_accepts() -> None:
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", LISTEN, str(port)])
    try:
        wait_accepting(child, port, "the listener")
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        child.kill()
        child.wait()


def test_a_child_that_exits_is_a_setup_error_at_once() -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    child.wait()
    with pytest.raises(SetupError, match="the receiver did not start"):
        wait_accepting(child, free_port(), "the receiver")
