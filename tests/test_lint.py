"""Static checks: mypy --strict for Linux and for Windows, ruff check and ruff format (see pyproject.toml)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from nettest import REPO_ROOT

TARGETS = ["src/netnotify", "tests"]


def run_tool(module: str, *args: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (it comes with `pip install --group test`)")
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"{module} {' '.join(args)}:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("platform", ["linux", "win32"])
def test_mypy_strict(platform: str) -> None:
    # Both platforms are checked wherever the suite runs: code for one must type-check on the other too
    # (sys.platform branches are checked for the platform they name). One cache per platform keeps both warm.
    run_tool("mypy", "--strict", "--platform", platform, f"--cache-dir=.mypy_cache/{platform}", *TARGETS)


def test_ruff_check() -> None:
    run_tool("ruff", "check", *TARGETS)


def test_ruff_format() -> None:
    run_tool("ruff", "format", "--check", *TARGETS)
