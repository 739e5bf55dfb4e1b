"""The seeder's producer process never outlives the seeder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in command:
            found.append(int(entry.name))
    return found


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_the_producer_stops_when_the_seeder_stops(tmp_path, how):
    seed = str(900_000 + how.value)  # a marker on both processes' command lines
    env = {
        **os.environ,
        "GLOBEGUARD_DATA_DIR": str(tmp_path),
        "GLOBEGUARD_DB__URL": f"sqlite+aiosqlite:///{tmp_path}/gg.db",
        "GLOBEGUARD_SECRET_KEY": "seed-test-secret-key-not-for-production",
    }
    command = [sys.executable, "-c", "from globeguard.cli import main; main()", "demo", "seed"]
    seeder = subprocess.Popen(
        [*command, "--users", "200000", "--seed", seed],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert wait_until(lambda: len(processes_with(seed)) == 2, 30)  # seeder + producer
        seeder.send_signal(how)
        seeder.wait(timeout=30)
        assert wait_until(lambda: not processes_with(seed), 30)
    finally:
        for pid in processes_with(seed):
            os.kill(pid, signal.SIGKILL)
        if seeder.poll() is None:
            seeder.kill()
