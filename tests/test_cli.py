"""The command line: `netnotify watch` prints changes until SIGINT (exit 130); bad arguments exit 2."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pytest
from nettest import NetNS, ensure_private_netns, python_env

pytestmark = pytest.mark.linux

MODULE = [sys.executable, "-m", "netnotify"]
SCRIPT = Path(sys.executable).parent / "netnotify"  # the console script installed beside this Python


def pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


def watch_until_address_shows(ns: NetNS, lines: queue.Queue[str]) -> str:
    """Adds addresses until `watch` prints one (it may still be registering when the first is added)."""
    deadline = time.monotonic() + 15
    seen: list[str] = []
    for n in range(1, 200):
        address = f"10.66.0.{n}"
        ns.ip(f"addr add {address}/32 dev lo")
        until = time.monotonic() + 0.5
        while (left := until - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            seen.append(line)
            if "10.66.0." in line and "address" in line:
                return line
        if time.monotonic() > deadline:
            break
    raise AssertionError("watch printed no line for an added address; it printed:\n" + "\n".join(seen))


@pytest.mark.parametrize("command", [MODULE, [str(SCRIPT)]], ids=["python -m netnotify", "netnotify"])
def test_watch_prints_changes_and_stops_on_sigint(ns: NetNS, command: Sequence[str]) -> None:
    if command[0] == str(SCRIPT) and not SCRIPT.exists():
        pytest.skip(f"the console script is not installed at {SCRIPT}")
    ensure_private_netns()
    command = [*command, "watch"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env()
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=pump, args=(process.stdout, lines), daemon=True)
        reader.start()
        try:
            line = watch_until_address_shows(ns, lines)
            process.send_signal(signal.SIGINT)
            returncode = process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            reader.join(5)  # it ends at end of file, before the pipes are closed
        stderr = process.stderr.read()
    assert "add" in line.split(), line
    assert f"lo[{ns.ifindex('lo')}]" in line, line
    assert returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
