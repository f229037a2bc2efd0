"""Static checks: mypy --strict, ruff check and ruff format (configured in pyproject.toml)."""

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


def test_mypy_strict() -> None:
    run_tool("mypy", "--strict", *TARGETS)


def test_ruff_check() -> None:
    run_tool("ruff", "check", *TARGETS)


def test_ruff_format() -> None:
    run_tool("ruff", "format", "--check", *TARGETS)
