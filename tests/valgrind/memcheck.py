"""Runs memcheck_churn.py under Valgrind's memcheck in a new network namespace and judges the report.

    python tests/valgrind/memcheck.py [--cycles N] [--xml FILE] [--python PATH]   (root; docs/reliability.md)

The verdict comes from Valgrind's XML report, not from its exit status alone:

- every memory error fails, wherever it is: invalid reads and writes, invalid frees, overlapping copies,
  uninitialised values used in a jump, an address or a system call. One exception, CPython's own: 3.11
  computes `0 * ob_digit[0]` on the uninitialised digit of a zero-sized int (maybe_small_long), which
  memcheck cannot prove is 0; an uninitialised-value error whose origin is that allocation (`_PyLong_New`,
  called by CPython) is CPython's, and is counted but does not fail (is_cpython_zero_int);
- a definitely or indirectly lost block fails when any frame of the stack that allocated it is netnotify's
  extension (`_netnotify`); the interpreter's own leaks at exit are counted but do not fail. Possibly lost and
  still reachable blocks are not considered (CPython keeps interior pointers to its objects).

Valgrind runs with --error-exitcode, so its exit status says whether it counted any error; the run is
also judged broken if memcheck_churn.py did not finish (its JSON line of counts), or the report is incomplete.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHURN = HERE / "memcheck_churn.py"
ERROR_EXITCODE = 97
EXTENSION = "_netnotify"
LEAK_KINDS = {"Leak_DefinitelyLost", "Leak_IndirectlyLost"}
IGNORED_LEAK_KINDS = {"Leak_PossiblyLost", "Leak_StillReachable"}
ALLOCATORS = {"malloc", "calloc", "realloc"}
# CPython 3.11's zero-sized int (see the module docstring): the allocation that is the origin.
CPYTHON_ZERO_INT_ORIGIN = "_PyLong_New"


@dataclass(frozen=True)
class Frame:
    fn: str
    obj: str
    file: str
    line: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else Path(self.obj).name
        return f"{self.fn or '???'} ({where})"

    @property
    def is_netnotify(self) -> bool:
        return EXTENSION in Path(self.obj).name


@dataclass(frozen=True)
class Error:
    kind: str
    what: str
    stack: list[Frame]
    # --track-origins: where an uninitialised value came from
    origin: list[Frame] = field(default_factory=list)

    @property
    def in_netnotify(self) -> bool:
        return any(frame.is_netnotify for frame in [*self.stack, *self.origin])

    def describe(self, frames: int = 12) -> str:
        lines = [f"{self.kind}: {self.what}", *(f"    at {frame}" for frame in self.stack[:frames])]
        if self.origin:
            lines.append("  origin:")
            lines += [f"    at {frame}" for frame in self.origin[:frames]]
        return "\n".join(lines)


@dataclass
class Verdict:
    failures: list[Error] = field(default_factory=list)  # fail the run
    foreign_leaks: list[Error] = field(default_factory=list)  # the interpreter's own, at exit
    known_cpython: list[Error] = field(default_factory=list)  # CPython 3.11's zero-sized int
    ignored: int = 0  # possibly lost, still reachable


def _frames(stack: ET.Element | None) -> list[Frame]:
    if stack is None:
        return []
    return [
        Frame(
            fn=frame.findtext("fn") or "",
            obj=frame.findtext("obj") or "",
            file=frame.findtext("file") or "",
            line=frame.findtext("line") or "",
        )
        for frame in stack.iter("frame")
    ]


def parse(xml_text: str) -> list[Error]:
    """The errors of a memcheck XML report (--xml=yes), leak records included."""
    root = ET.fromstring(xml_text)
    errors = []
    for element in root.iter("error"):
        stacks = element.findall("stack")
        what = element.findtext("what") or element.findtext("xwhat/text") or ""
        errors.append(
            Error(
                kind=element.findtext("kind") or "",
                what=what,
                stack=_frames(stacks[0] if stacks else None),
                origin=_frames(stacks[1] if len(stacks) > 1 else None),
            )
        )
    return errors


def is_cpython_zero_int(error: Error) -> bool:
    """CPython 3.11's zero-sized int: the uninitialised value is the unfilled digit CPython allocated itself.

    The origin's first frame past the allocator is _PyLong_New, called by CPython (netnotify, built for the
    Limited API, cannot call it). The error itself may be anywhere the int 0 went, netnotify's callbacks
    included: the pointer to the small int 0 that maybe_small_long picks counts as uninitialised for memcheck.
    """
    if error.kind not in ("UninitCondition", "UninitValue"):
        return False
    origin = [frame for frame in error.origin if frame.fn not in ALLOCATORS]
    return len(origin) >= 2 and origin[0].fn == CPYTHON_ZERO_INT_ORIGIN and not origin[1].is_netnotify


def judge(errors: list[Error]) -> Verdict:
    verdict = Verdict()
    for error in errors:
        if error.kind in IGNORED_LEAK_KINDS:
            verdict.ignored += 1
        elif error.kind in LEAK_KINDS:
            (verdict.failures if error.in_netnotify else verdict.foreign_leaks).append(error)
        elif is_cpython_zero_int(error):
            verdict.known_cpython.append(error)
        else:
            verdict.failures.append(error)
    return verdict


@dataclass
class Run:
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    xml: str
    counts: dict[str, int]

    @property
    def complete(self) -> bool:
        return "</valgrindoutput>" in self.xml and "<status>" in self.xml


def valgrind_options(xml_file: Path) -> list[str]:
    """valgrind and its options: memcheck, full leak check, origins of uninitialised values, XML report."""
    return [
        "valgrind",
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect",
        "--errors-for-leak-kinds=definite,indirect",
        f"--error-exitcode={ERROR_EXITCODE}",
        "--track-origins=yes",
        "--num-callers=40",
        "--child-silent-after-fork=yes",  # the forks that exec `ip` report nothing
        "--xml=yes",
        f"--xml-file={xml_file}",
    ]


def run(
    cycles: int, *, python: str = sys.executable, timeout: float = 1800, xml_out: Path | None = None
) -> Run:
    """Runs memcheck_churn.py under memcheck, in a network namespace of its own (`unshare -n`)."""
    for tool in ("valgrind", "unshare", "ip"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed")
    env = dict(os.environ)
    env["PYTHONMALLOC"] = "malloc"  # every object is a malloc block memcheck follows
    # memcheck_churn.py refuses the caller's namespace (and the test session's, when pytest started this).
    env.setdefault("NETNOTIFY_TEST_HOST_NETNS", str(os.stat("/proc/thread-self/ns/net").st_ino))
    with tempfile.TemporaryDirectory(prefix="netnotify-memcheck-") as tmp:
        xml_file = Path(tmp) / "memcheck.xml"
        churn = [python, str(CHURN), f"--cycles={cycles}"]
        command = ["unshare", "--net", "--", *valgrind_options(xml_file), *churn]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
        seconds = time.monotonic() - started
        xml = xml_file.read_text(errors="replace") if xml_file.exists() else ""
    if xml_out is not None:
        xml_out.write_text(xml)
    counts: dict[str, int] = {}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            counts = json.loads(line)
            break
    return Run(done.returncode, seconds, done.stdout, done.stderr, xml, counts)


def report(result: Run, verdict: Verdict) -> list[str]:
    """What is wrong with a run (empty: it passed)."""
    problems = [error.describe() for error in verdict.failures]
    if not result.complete:
        problems.append("the Valgrind report is incomplete (the run was killed?)")
    if not result.counts:
        status = result.returncode
        problems.append(f"memcheck_churn.py did not finish (status {status}):\n{result.stderr[-3000:]}")
    counted = bool(verdict.failures or verdict.foreign_leaks or verdict.known_cpython)
    if result.returncode not in (0, ERROR_EXITCODE) or (result.returncode == ERROR_EXITCODE) != counted:
        problems.append(f"unexpected exit status {result.returncode}:\n{result.stderr[-3000:]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3, help="churn cycles (default 3, about a minute)")
    parser.add_argument("--xml", type=Path, help="keep Valgrind's XML report here")
    parser.add_argument("--python", default=sys.executable, help="the Python (and netnotify) to check")
    args = parser.parse_args()
    result = run(args.cycles, python=args.python, xml_out=args.xml)
    verdict = judge(parse(result.xml)) if result.complete else Verdict()
    problems = report(result, verdict)
    for problem in problems:
        print(problem, end="\n\n")
    print(
        f"memcheck: {args.cycles} cycles in {result.seconds:.0f} s; "
        f"{len(verdict.failures)} failing error(s); "
        f"{len(verdict.foreign_leaks)} leak record(s) outside netnotify, "
        f"{len(verdict.known_cpython)} CPython 3.11 zero-int report(s), "
        f"{verdict.ignored} possibly lost/reachable record(s) ignored"
    )
    print(f"churn: {json.dumps(result.counts)}")
    print("memcheck: FAILED" if problems else "memcheck: passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
