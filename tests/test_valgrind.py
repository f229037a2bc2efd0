"""Valgrind's memcheck over a churn of every kind of registration (tests/valgrind/, docs/reliability.md).

test_churn_is_clean_under_memcheck runs tests/valgrind/memcheck_churn.py under memcheck in a namespace of
its own (CHURN_CYCLES cycles, about a minute) and fails on any memory error anywhere, or any definitely or
indirectly lost block allocated through netnotify's extension. A longer run:
`python tests/valgrind/memcheck.py --cycles 20`.

The other tests prove that the judge can fail: real memcheck reports of a small C program whose library is
named like the extension, and hand-written reports for CPython's own false positive.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nettest import TESTS_DIR, UNDER_SANITIZER

sys.path.insert(0, str(TESTS_DIR / "valgrind"))
import memcheck

CHURN_CYCLES = 3
ALWAYS = [  # what every churn run does at least once, or the run proved nothing
    "callback_interface",
    "callback_address",
    "callback_route",
    "initial_notifications",
    "cancelled_from_callback",
    "stable_callbacks",
    "stable_cancelled",
    "completed",
    "table_rows",
    "conversions",
    "watch_events",
    "watch_callback_events",
    "async_events",
    "unraisable",
    "netlink_drops",
    "change_rounds",
]


def need_valgrind() -> None:
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (Debian: apt-get install valgrind)")


@pytest.mark.linux
def test_churn_is_clean_under_memcheck() -> None:
    if UNDER_SANITIZER:
        pytest.skip("the extension is built with ASan (.ci/sanitize): Valgrind cannot run ASan code")
    need_valgrind()
    result = memcheck.run(CHURN_CYCLES, timeout=900)
    verdict = memcheck.judge(memcheck.parse(result.xml)) if result.complete else memcheck.Verdict()
    problems = memcheck.report(result, verdict)
    assert not problems, "\n\n".join(problems)
    counts = result.counts
    assert counts["cycles"] == CHURN_CYCLES
    missing = [name for name in ALWAYS if counts.get(name, 0) <= 0]
    assert not missing, f"the churn never did {missing}: {counts}"
    assert counts["expected_errors"] == 15 * CHURN_CYCLES, counts
    assert "calls_that_did_not_fail" not in counts, counts
    leaked = {name: alive for name, alive in counts.items() if name.startswith("leaked_")}
    assert not leaked, f"handles or watchers alive after everything was cancelled and closed: {leaked}"


# ---------------------------------------------------------------- the judge can fail

PROBE_LIBRARY = r"""
#include <stdlib.h>
#include <string.h>
struct holder { char *inner; };
void probe_leak(void) { char *p = malloc(40); memset(p, 1, 40); p = NULL; }
void probe_indirect(void) {
    struct holder *h = malloc(sizeof *h);
    h->inner = malloc(24);  /* lost with h: indirectly */
    h = NULL;
}
"""
OTHER_LIBRARY = r"""
#include <stdlib.h>
#include <string.h>
void other_leak(void) { char *p = malloc(56); memset(p, 2, 56); p = NULL; }
"""
PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
void probe_leak(void);
void probe_indirect(void);
void other_leak(void);
int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "leaks") == 0) { probe_leak(); probe_indirect(); }
    if (strcmp(mode, "foreign") == 0) other_leak();
    if (strcmp(mode, "invalid-read") == 0) {
        char *p = malloc(8);
        memset(p, 0, 8);
        volatile char c = p[8];  /* one past the end */
        (void)c;
        free(p);
    }
    if (strcmp(mode, "uninit") == 0) {
        int *p = malloc(sizeof *p);
        if (*p == 42) puts("42");
        free(p);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A program linked to _netnotify_probe.so (named like the extension) and libother.so."""
    need_valgrind()
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the probe program")
    out = tmp_path_factory.mktemp("memcheck-probe")
    for name, source in (("_netnotify_probe.so", PROBE_LIBRARY), ("libother.so", OTHER_LIBRARY)):
        (out / f"{name}.c").write_text(source)
        gcc = ["gcc", "-g", "-O0", "-shared", "-fPIC", "-o", str(out / name), str(out / f"{name}.c")]
        subprocess.run(gcc, check=True, timeout=120)
    (out / "probe.c").write_text(PROGRAM)
    link = [f"-L{out}", "-l:_netnotify_probe.so", "-l:libother.so", f"-Wl,-rpath,{out}"]
    subprocess.run(["gcc", "-g", "-O0", "-o", str(out / "probe"), str(out / "probe.c"), *link], check=True)
    return out / "probe"


def memcheck_probe(probe: Path, mode: str) -> tuple[int, memcheck.Verdict]:
    xml = probe.parent / f"{mode}.xml"
    done = subprocess.run(
        [*memcheck.valgrind_options(xml), str(probe), mode], capture_output=True, timeout=120, check=False
    )
    return done.returncode, memcheck.judge(memcheck.parse(xml.read_text()))


def test_judge_fails_definite_and_indirect_leaks_through_the_extension(probe: Path) -> None:
    returncode, verdict = memcheck_probe(probe, "leaks")
    assert returncode == memcheck.ERROR_EXITCODE
    kinds = sorted(error.kind for error in verdict.failures)  # probe_leak's block, probe_indirect's two
    assert kinds == ["Leak_DefinitelyLost", "Leak_DefinitelyLost", "Leak_IndirectlyLost"]
    assert all(any(frame.fn.startswith("probe_") for frame in e.stack) for e in verdict.failures)
    assert not verdict.foreign_leaks


def test_judge_counts_a_leak_outside_the_extension_without_failing(probe: Path) -> None:
    returncode, verdict = memcheck_probe(probe, "foreign")
    assert returncode == memcheck.ERROR_EXITCODE  # Valgrind counts it; the judge attributes it
    assert not verdict.failures
    assert [error.kind for error in verdict.foreign_leaks] == ["Leak_DefinitelyLost"]
    assert "other_leak" in [frame.fn for frame in verdict.foreign_leaks[0].stack]


@pytest.mark.parametrize(("mode", "kind"), [("invalid-read", "InvalidRead"), ("uninit", "UninitCondition")])
def test_judge_fails_memory_errors_anywhere(probe: Path, mode: str, kind: str) -> None:
    returncode, verdict = memcheck_probe(probe, mode)
    assert returncode == memcheck.ERROR_EXITCODE
    assert [error.kind for error in verdict.failures] == [kind]
    assert verdict.failures[0].stack[0].fn == "main"
    assert not verdict.failures[0].in_netnotify  # not netnotify's, and it fails all the same


def test_a_clean_probe_passes(probe: Path) -> None:
    returncode, verdict = memcheck_probe(probe, "nothing")
    assert returncode == 0
    assert not verdict.failures
    assert not verdict.foreign_leaks


def frame(fn: str, obj: str = "/usr/lib/libpython3.11.so.1.0") -> str:
    return f"<frame><ip>0x1</ip><obj>{obj}</obj><fn>{fn}</fn></frame>"


def uninit_report(origin: list[str]) -> str:
    use = "".join(frame(fn) for fn in ("maybe_small_long", "_PyLong_FromByteArray"))
    return (
        "<valgrindoutput><error><unique>0x1</unique><tid>1</tid><kind>UninitCondition</kind>"
        "<what>Conditional jump or move depends on uninitialised value(s)</what>"
        f"<stack>{use}</stack><auxwhat>Uninitialised value was created by a heap allocation</auxwhat>"
        f"<stack>{''.join(origin)}</stack></error></valgrindoutput>"
    )


def test_cpython_zero_int_is_the_only_uninitialised_value_let_through() -> None:
    extension = "/venv/lib/python3.11/site-packages/netnotify/_netnotify.abi3.so"
    cpython = uninit_report(
        [frame("malloc", "vgpreload_memcheck.so"), frame("_PyLong_New"), frame("int_from_bytes")]
    )
    through_netnotify = uninit_report(
        [frame("malloc", "vgpreload_memcheck.so"), frame("_PyLong_New"), frame("nn_row_new", extension)]
    )
    netnotify_stack = uninit_report([frame("nn_on_route", extension), frame("nn_readable", extension)])
    verdict = memcheck.judge(memcheck.parse(cpython))
    assert len(verdict.known_cpython) == 1
    assert not verdict.failures
    for report in (through_netnotify, netnotify_stack):
        verdict = memcheck.judge(memcheck.parse(report))
        assert len(verdict.failures) == 1
        assert not verdict.known_cpython


def test_report_refuses_an_incomplete_or_inconsistent_run() -> None:
    counts = {"cycles": 1}
    complete = "<valgrindoutput><status><state>FINISHED</state></status></valgrindoutput>"
    clean = memcheck.Run(0, 1.0, "", "", complete, counts)
    assert memcheck.report(clean, memcheck.Verdict()) == []
    killed = memcheck.Run(-9, 1.0, "", "", "<valgrindoutput><status>", {})
    assert len(memcheck.report(killed, memcheck.Verdict())) == 3
    counted_nothing = memcheck.Run(memcheck.ERROR_EXITCODE, 1.0, "", "", complete, counts)
    assert memcheck.report(counted_nothing, memcheck.Verdict())
