"""The libFuzzer harness of the netlink layer (tests/fuzz/) runs a fixed budget without a finding.

The harness (clang, libFuzzer + ASan + UBSan) starts from a copy of the seed corpus in a temporary directory,
so the repository's corpus is never written to; then the gcc-built replay driver (ASan + UBSan) runs every
input the fuzzer kept. A crash, a sanitizer report or a broken invariant of the harness fails the test, with
the offending input saved under the test's temporary directory. Without clang the test fails when CI is set
(CI installs clang and libclang-rt-14-dev) and is skipped otherwise. NETNOTIFY_FUZZ_SECONDS sets the budget.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nettest import REPO_ROOT

pytestmark = pytest.mark.linux(reason="the netlink fuzz harness: Linux only")

FUZZ_DIR = REPO_ROOT / "tests" / "fuzz"
BUILD = FUZZ_DIR / "build.sh"
SEEDS = FUZZ_DIR / "corpus"
BUDGET = int(os.environ.get("NETNOTIFY_FUZZ_SECONDS", "60"))
# The seeds alone reach about 800 edges: far fewer means the harness no longer reaches the parsers.
MIN_COVERAGE = 600
MIN_EXECUTIONS = 1000
FINDINGS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "invariant violated",
    "ERROR: libFuzzer",
    "deadly signal",
)


def missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI installs it: apt-get install clang libclang-rt-14-dev)", pytrace=False)
    pytest.skip(what)


def build(out: Path, which: str) -> Path:
    done = subprocess.run(
        ["sh", str(BUILD), str(out), which], capture_output=True, text=True, timeout=300, check=False
    )
    if which == "fuzz" and done.returncode != 0 and "libclang_rt.fuzzer" in done.stderr:
        missing(f"clang has no libFuzzer runtime:\n{done.stderr}")
    assert done.returncode == 0, f"build.sh {which}:\n{done.stdout}{done.stderr}"
    return out / ("nl_fuzz" if which == "fuzz" else "nl_replay")


def last_int(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    assert found, f"no {pattern!r} in the fuzzer's output:\n{text[-4000:]}"
    return int(found[-1])


@pytest.fixture(scope="module")
def replay() -> Iterator[Path]:
    """The gcc-built replay driver (ASan + UBSan)."""
    if not SEEDS.is_dir():
        pytest.skip("tests/fuzz is not in this tree (an sdist)")
    if shutil.which("gcc") is None:
        missing("gcc is needed to build the replay driver")
    with tempfile.TemporaryDirectory(prefix="nn_replay_") as out:
        yield build(Path(out), "replay")


def test_fuzz_scenarios(replay: Path) -> None:
    """The harness's deterministic scenarios: an interrupted reread of the links is done again."""
    done = subprocess.run(
        [str(replay), "--scenarios"], capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "scenario reread_interrupted: ok" in output, output
    assert not any(name in output for name in FINDINGS), output


def test_fuzz_netlink_parsers(tmp_path: Path, replay: Path) -> None:
    if shutil.which("clang") is None:
        missing("clang is needed to build the libFuzzer harness")
    fuzzer = build(tmp_path / "bin", "fuzz")
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    seeds = len(list(corpus.iterdir()))
    assert seeds >= 20, f"the seed corpus has {seeds} files"
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()

    started = time.monotonic()
    done = subprocess.run(
        [
            str(fuzzer),
            f"-max_total_time={BUDGET}",
            "-timeout=30",  # one input: a dump that waits for the kernel would hang here
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=BUDGET + 240,
        check=False,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    output = done.stderr + done.stdout
    found = [name for name in FINDINGS if name in output]
    saved = sorted(p.name for p in artifacts.iterdir())
    report = f"the fuzzer found something ({found}; inputs saved in {artifacts}: {saved}):\n{output[-8000:]}"
    assert done.returncode == 0, report
    assert not found, report
    assert not saved, report
    executions = last_int(r"stat::number_of_executed_units:\s*(\d+)", output)
    coverage = last_int(r"\bcov: (\d+)", output)
    features = last_int(r"\bft: (\d+)", output)
    print(
        f"fuzz: {executions} executions in {elapsed:.0f} s, cov: {coverage} ft: {features}, "
        f"corpus {seeds} -> {len(list(corpus.iterdir()))} inputs"
    )
    assert executions >= MIN_EXECUTIONS, f"only {executions} executions in {BUDGET} s"
    assert coverage >= MIN_COVERAGE, f"coverage {coverage} < {MIN_COVERAGE}: the harness misses the parsers"

    # every input kept, again, under gcc's sanitizers
    kept = len(list(corpus.iterdir()))
    done = subprocess.run(
        [str(replay), str(corpus)], capture_output=True, text=True, timeout=600, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    assert not any(name in output for name in FINDINGS), output[-8000:]
    assert f"replayed {kept} inputs" in output, output[-2000:]
