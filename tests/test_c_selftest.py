"""The white-box C self-test of the netlink layer (tests/c/), plain and under ASan/UBSan.

It builds csrc/nn_netlink.c and csrc/nn_map.c alone (no Python), runs them in a private network namespace
against the real kernel, checks every table against `ip`, and parses each captured message cut at every
length and randomly corrupted.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.linux(reason="the C self-test of the netlink layer: Linux only")

SCRIPT = Path(__file__).parent / "c" / "run_selftest.sh"


def test_netlink_layer_selftest_plain_and_sanitized() -> None:
    if shutil.which("gcc") is None:  # checked here, so that elsewhere the platform is the reason it skips
        pytest.skip("gcc is needed to build the C self-test")
    result = subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("PASSED (0 failures)") == 2, output
    assert "ERROR: AddressSanitizer" not in output, output
    assert "runtime error" not in output, output
