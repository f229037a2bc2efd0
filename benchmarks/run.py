"""netnotify's benchmark: how fast, how complete and how quiet its Linux backend is, against a raw C reader.

    python benchmarks/run.py [--quick] [--reps 3] [--out benchmarks/RESULTS.md]      (as root)

It runs with the interpreter that starts it, against the netnotify installed there, and writes a Markdown
report (and the raw figures beside it, as .json). Everything happens in private network namespaces it creates:
it re-executes itself under `unshare --net`, adds a veth pair whose far end lives in a second namespace (held
by a `sleep` started under `unshare --net`), and refuses to run `ip` in the machine's own namespace. Both
namespaces vanish with their processes, however the run ends.

Workloads (the generator, `ip -batch` or benchmarks/nlwriter.c, is its own process; so is each listener):
bursts of routes, addresses and veth pairs added then deleted, single-change latency, idle, 1,000
registrations, cancel, and listing a 500,000-route table. Listeners: a raw C reader (benchmarks/nlreader.c,
compiled here), `ip monitor`, pyroute2 (installed into benchmarks/.venv when the interpreter lacks it),
netnotify's low-level callback (counting, and reading two members), its blocking and asyncio watchers, and
the floors of Python: the socket read by plain Python, blocking and by asyncio, nothing parsed.
A second C reader with a 256 MiB buffer runs beside every listener: its count is the truth.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from listener import KINDS, netlink_drops, percentiles, socket_inodes  # noqa: E402

ENV_HOST_NETNS = "NNBENCH_HOST_NETNS"
ENV_TMP = "NNBENCH_TMP"
ENV_PYROUTE2 = "NNBENCH_PYROUTE2_PYTHON"
PYROUTE2_REQUIREMENT = "pyroute2==0.9.7"
MiB = 1024 * 1024
C_RCVBUF = 64 * MiB  # the C reader "c": the buffer netnotify asks for (as root)
TRUTH_RCVBUF = 256 * MiB  # the truth reader: nothing is dropped
PYROUTE2_LARGE_RCVBUF = 64 * MiB
GATEWAY4 = "10.255.0.2"

LISTENERS = [
    "c",
    "c-default",
    "ip-monitor",
    "pyroute2",
    "pyroute2-large",
    "nn-count",
    "nn-read",
    "watch",
    "watch-async",
    "py-floor",
    "py-async-floor",
]
NETNOTIFY = {"nn-count", "nn-read", "watch", "watch-async"}
IDLE_LISTENERS = ["c", "ip-monitor", "pyroute2", "nn-count", "watch", "watch-async"]
DESCRIPTION = {
    "c": f"raw C reader, recv per message, {C_RCVBUF // MiB} MiB buffer (the baseline C)",
    "c-default": "raw C reader, the kernel's default buffer",
    "ip-monitor": "`ip -ts -o monitor` (iproute2)",
    "pyroute2": "pyroute2 IPRoute bind() + get() loop, its default buffer",
    "pyroute2-large": f"pyroute2, {PYROUTE2_LARGE_RCVBUF // MiB} MiB buffer (SO_RCVBUFFORCE)",
    "nn-count": "netnotify notify_*() with a callback that only counts",
    "nn-read": "netnotify notify_*(), the callback reads two members of the row",
    "watch": "netnotify.watch(), blocking `for event in watcher`",
    "watch-async": "netnotify.watch(), `async for event in watcher`",
    "py-floor": "the floor of Python: a raw netlink socket read by `recv` per datagram, messages counted by "
    "their headers (no parsing), the C reader's buffer",
    "py-async-floor": "the floor of asyncio: the same socket read in an `add_reader` callback that wakes a "
    "task awaiting a future, as any asyncio reader does",
}


@dataclass(frozen=True)
class Sizes:
    routes_small: int
    routes_big: int
    addresses: int  # of each family
    veths: int
    latency_count: int
    latency_interval_us: int
    idle_s: float
    scale_regs: int
    scale_routes: int
    cancels: int
    table_routes: int
    quiet_s: float


FULL = Sizes(10_000, 100_000, 2000, 500, 1000, 1000, 10.0, 1000, 10_000, 200, 500_000, 2.0)
QUICK = Sizes(500, 2000, 50, 10, 50, 1000, 0.5, 10, 500, 10, 2000, 0.5)


@dataclass
class Workload:
    name: str
    title: str
    kind: str
    phases: list[list[str]]  # `ip -batch` input, one process per phase
    messages: int  # rtnetlink messages of the counted types the generator causes
    nn_events: int  # netnotify ADD/DELETE notifications they make
    # (groups, types, count): before the next phase, wait until the kernel has sent these messages
    barrier: tuple[str, str, int] | None = None
    paths: list[Path] = field(default_factory=list)


def expected_per(w: Workload, name: str) -> int:
    """What the listener delivers for the workload's messages: netnotify's notifications, or the messages."""
    return w.nn_events if name in NETNOTIFY else w.messages


def route4(i: int, base: int = 64) -> str:
    return f"10.{base + i // 65536}.{(i // 256) % 256}.{i % 256}"


def route_workload(n: int) -> Workload:
    adds = [f"route add {route4(i)}/32 via {GATEWAY4} dev nb0" for i in range(n)]
    dels = [f"route del {route4(i)}/32" for i in range(n)]
    return Workload(f"route-{n}", f"add then delete {n:,} IPv4 routes", "route", [adds + dels], 2 * n, 2 * n)


def address_workload(n: int) -> Workload:
    # On na0, a veth that stays down. On a link that is up, the MLD leaves of deleted IPv6 addresses linger
    # for seconds and make the next run's adds ten times slower (1.5 s, then 10-12 s, here): the listeners
    # after the first would be measured against a different generator. The kernel announces a new IPv6
    # address from a work queue: one deleted before that work ran is never announced, so the deletes wait
    # until every IPv6 RTM_NEWADDR is out (the barrier).
    v4 = [f"10.128.{i // 256}.{i % 256}/32" for i in range(n)]
    v6 = [f"2001:db8:100::{i + 1:x}/128" for i in range(n)]
    adds = [f"address add {a} dev na0" for a in v4] + [f"address add {a} dev na0 nodad" for a in v6]
    dels = [f"address del {a} dev na0" for a in v4 + v6]
    title = f"add then remove {n:,} IPv4 and {n:,} IPv6 addresses"
    return Workload(f"address-{n}+{n}", title, "address", [adds, dels], 4 * n, 4 * n, barrier=("9", "20", n))


def veth_workload(n: int) -> Workload:
    # Deleted as one group: one `ip link del` per pair waits for an RCU grace period each (18 ms here), which
    # would make the generator, not the listeners, the subject.
    adds = [f"link add nbv{i} group 77 type veth peer name nbp{i} group 77" for i in range(n)]
    # Per pair: RTM_NEWLINK and RTM_DELLINK for each end; netnotify: an AF_INET and an AF_INET6 row per end.
    title = f"create {n:,} veth pairs, then delete them (`ip link del group`)"
    return Workload(f"veth-{n}", title, "interface", [[*adds, "link del group 77"]], 4 * n, 8 * n)


# ---------------------------------------------------------------- namespaces and processes


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def netns_inode(path: str = "/proc/self/ns/net") -> int:
    return os.stat(path).st_ino


class ListenerFailed(RuntimeError):
    pass


class Proc:
    """A listener process: lines of its stdout through a queue, stdin kept open until close()."""

    def __init__(self, name: str, cmd: Sequence[str], log: Path) -> None:
        self.name = name
        self.log = log
        self.stderr = log.open("w")
        self.popen = subprocess.Popen(
            list(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.pids = [self.popen.pid]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def line(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise ListenerFailed(f"{self.name}: nothing within {timeout:.0f} s") from None
        if line is None:
            self.popen.wait()
            tail = self.log.read_text()[-2000:]
            raise ListenerFailed(f"{self.name} exited with {self.popen.returncode}: {tail}")
        return line

    def ready(self, timeout: float = 120) -> None:
        line = self.line(timeout)
        if not line.startswith("ready"):
            raise ListenerFailed(f"{self.name}: expected ready, got {line[:200]!r}")
        rest = line[5:].strip()
        if rest:
            self.pids = json.loads(rest)

    def result(self, timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.line(timeout))
        return result

    def send(self, text: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text)
        self.popen.stdin.flush()

    def close(self, timeout: float = 30) -> None:
        with contextlib.suppress(OSError):
            if self.popen.stdin is not None:
                self.popen.stdin.close()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self.stderr.close()


def drops_of(pids: Iterable[int]) -> int:
    """The kernel's drops (/proc/net/netlink) of the NETLINK_ROUTE sockets the processes hold."""
    return netlink_drops(set().union(*(socket_inodes(pid) for pid in pids)))


def process_sample(pid: int) -> dict[str, int]:
    """Context switches (every thread), CPU ticks (/proc/PID/stat) and ns (schedstat, every thread)."""
    sample = {"voluntary": 0, "involuntary": 0, "cpu_ns": 0, "threads": 0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        sample["voluntary"] += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        sample["involuntary"] += int(line.split()[1])
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                sample["cpu_ns"] += int(f.read().split()[0])
            sample["threads"] += 1
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    sample["cpu_ticks"] = int(fields[11]) + int(fields[12])  # utime + stime, fields 14 and 15
    return sample


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace, sizes: Sizes, tmp: Path, host_netns: int) -> None:
        self.args = args
        self.sizes = sizes
        self.tmp = tmp
        self.host_netns = host_netns
        self.reader = str(tmp / "nlreader")
        self.writer = str(tmp / "nlwriter")
        # Latency: the writer on CPU 0, listeners on the others, so that a woken listener cannot preempt the
        # writer inside its send() (which would stamp the event before the send "returned").
        cpus = sorted(os.sched_getaffinity(0))
        self.writer_cpus = ["taskset", "-c", str(cpus[0])] if len(cpus) > 1 else []
        self.listener_cpus = ["taskset", "-c", ",".join(map(str, cpus[1:]))] if len(cpus) > 1 else []
        self.pyroute2_python = os.environ[ENV_PYROUTE2]
        self.far: subprocess.Popen[bytes] | None = None
        self.runs: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.counter = 0
        self.generator_rates: dict[str, list[float]] = {}
        self.load_start = loadavg()

    # -- guarded changes

    def guard(self, path: str = "/proc/self/ns/net") -> None:
        if netns_inode(path) == self.host_netns:
            raise RuntimeError("refusing to change the network: this is the machine's own namespace")

    def ip(self, *args: str, stdin: str | None = None) -> str:
        self.guard()
        done = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def ip_far(self, *args: str) -> None:
        assert self.far is not None
        path = f"/proc/{self.far.pid}/ns/net"
        self.guard(path)
        subprocess.run(["nsenter", f"--net={path}", "ip", *args], check=True)

    def batch(self, path: Path) -> float:
        self.guard()
        start = time.perf_counter()
        done = subprocess.run(["ip", "-batch", str(path)], capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"ip -batch {path.name}: {done.stderr.strip()[-500:]}")
        return seconds

    def generate(self, w: Workload) -> tuple[int, float]:
        """Runs the workload's phases; returns when it started (CLOCK_MONOTONIC ns) and how long it took."""
        barrier = None
        if w.barrier is not None:
            groups, types, count = w.barrier
            cmd = [self.reader, "-g", groups, "-t", types, "-n", str(count), "-b", str(TRUTH_RCVBUF)]
            barrier = self.start("barrier", cmd)
        try:
            if barrier is not None:
                barrier.ready()
            start = time.monotonic_ns()
            for i, path in enumerate(w.paths):
                if i and barrier is not None:
                    barrier.result(timeout=60)
                self.batch(path)
            return start, (time.monotonic_ns() - start) / 1e9
        finally:
            if barrier is not None:
                barrier.close()

    def batch_lines(self, lines: list[str]) -> float:
        path = self.tmp / "batch.txt"
        path.write_text("".join(line + "\n" for line in lines))
        return self.batch(path)

    # -- namespaces

    def setup(self) -> None:
        self.guard()
        self.ip("link", "set", "lo", "up")
        self.far = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])
        own = netns_inode()
        deadline = time.monotonic() + 10
        while True:  # until the child has unshared (and exec'd sleep)
            with contextlib.suppress(OSError):
                inode = netns_inode(f"/proc/{self.far.pid}/ns/net")
                if inode not in (own, self.host_netns):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the far namespace did not come up")
            time.sleep(0.01)
        self.ip("link", "add", "nb0", "type", "veth", "peer", "name", "nb1", "netns", str(self.far.pid))
        self.ip("link", "set", "nb0", "addrgenmode", "none")  # no link-local address, no DAD, no RS
        self.ip("link", "set", "nb0", "up")
        self.ip("address", "add", "10.255.0.1/24", "dev", "nb0")
        self.ip("address", "add", "2001:db8:ff::1/64", "dev", "nb0", "nodad")
        self.ip_far("link", "set", "lo", "up")
        self.ip_far("link", "set", "nb1", "addrgenmode", "none")
        self.ip_far("link", "set", "nb1", "up")
        self.ip_far("address", "add", f"{GATEWAY4}/24", "dev", "nb1")
        self.ip_far("address", "add", "2001:db8:ff::2/64", "dev", "nb1", "nodad")
        self.ip("link", "add", "na0", "type", "veth", "peer", "name", "na1")  # down: the address workload
        self.ifindex = socket.if_nametoindex("nb0")
        time.sleep(1.0)  # let the kernel's own follow-ups (carrier, multicast routes) pass

    def teardown(self) -> None:
        if self.far is not None:
            self.far.kill()
            self.far.wait()

    # -- listeners

    def listener_cmd(
        self, name: str, kind: str, target: int, *, latency: bool = False, idle: bool = False
    ) -> list[str]:
        groups, types = KINDS[kind]
        if name in ("c", "c-default", "truth"):
            rcvbuf = {"c": C_RCVBUF, "c-default": 0, "truth": TRUTH_RCVBUF}[name]
            cmd = [
                self.reader,
                "-g",
                ",".join(map(str, groups)),
                "-t",
                ",".join(map(str, types)),
                "-b",
                str(rcvbuf),
                "-n",
                str(target),
                "-q",
                str(int(self.sizes.quiet_s * 1000)),
            ]
            return cmd + (["-l"] if latency else []) + (["-i"] if idle else [])
        python = self.pyroute2_python if name.startswith("pyroute2") else sys.executable
        mode = "pyroute2" if name.startswith("pyroute2") else name
        cmd = [
            python,
            str(HERE / "listener.py"),
            mode,
            "--kind",
            kind,
            "--target",
            str(target),
            "--quiet",
            str(self.sizes.quiet_s),
        ]
        if name == "pyroute2-large":
            cmd += ["--rcvbuf", str(PYROUTE2_LARGE_RCVBUF)]
        if name.startswith("py-"):
            cmd += ["--rcvbuf", str(C_RCVBUF)]
        return cmd + (["--latency"] if latency else []) + (["--idle"] if idle else [])

    def start(self, name: str, cmd: Sequence[str]) -> Proc:
        self.counter += 1
        return Proc(name, cmd, self.tmp / f"{self.counter:04d}-{name}.log")

    def record(self, result: dict[str, Any]) -> None:
        self.runs.append(result)
        shown = {k: v for k, v in result.items() if k not in ("stamps_ns", "socket_pids")}
        print(json.dumps(shown), file=sys.stderr, flush=True)

    def failed(self, what: str, err: Exception) -> None:
        message = f"{what}: {err}"
        self.errors.append(message)
        print("ERROR", message, file=sys.stderr, flush=True)

    # -- workloads

    def burst(self, w: Workload, name: str, rep: int) -> None:
        target = w.nn_events if name in NETNOTIFY else w.messages
        procs: list[Proc] = []
        try:
            truth = self.start("truth", self.listener_cmd("truth", w.kind, w.messages))
            procs.append(truth)
            proc = self.start(name, self.listener_cmd(name, w.kind, target))
            procs.append(proc)
            truth.ready()
            proc.ready()
            gen_start, gen_s = self.generate(w)
            truth_result = truth.result(timeout=60 + self.sizes.quiet_s)
            result = proc.result(timeout=600)
            drops = drops_of(proc.pids) + result.pop("closed_socket_drops", 0)
            truth_drops = drops_of(truth.pids)
        except (ListenerFailed, RuntimeError, ValueError) as err:
            self.failed(f"{w.name} {name} rep {rep}", err)
            return
        finally:
            for p in procs:
                p.close()
        generated = truth_result["events"]
        per = expected_per(w, name)
        expected = generated * per // w.messages
        self.generator_rates.setdefault(w.name, []).append(generated / gen_s)
        if generated != w.messages or truth_drops:
            self.errors.append(
                f"{w.name} rep {rep}: the truth reader saw {generated} messages (expected "
                f"{w.messages}), {truth_drops} dropped"
            )
        result.update(
            workload=w.name,
            listener=name,
            rep=rep,
            expected=expected,
            generated=generated,
            lost=max(0, expected - result["events"]),
            drops=drops,
            gen_s=gen_s,
            wall_s=(result["last_ns"] - gen_start) / 1e9,
            # Per kernel message the listener took in: netnotify makes two notifications of some (a link's
            # AF_INET and AF_INET6 rows), and counting those would halve its cost against the C reader's.
            cpu_us_per_event=result["cpu_s"]
            * 1e6
            / max(1.0, result["events"] * w.messages / expected_per(w, name)),
        )
        result.pop("stamps_ns", None)
        self.record(result)

    def latency(self, name: str, rep: int) -> None:
        n = self.sizes.latency_count
        proc = self.start(name, self.listener_cpus + self.listener_cmd(name, "route", n, latency=True))
        try:
            proc.ready()
            self.guard()
            writer = subprocess.run(
                [
                    *self.writer_cpus,
                    self.writer,
                    str(n),
                    str(self.sizes.latency_interval_us),
                    route4(0, base=96),
                    GATEWAY4,
                    str(self.ifindex),
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=60 + n * self.sizes.latency_interval_us / 1e6,
            )
            sends = json.loads(writer.stdout)  # every add was acknowledged: n changes generated
            result = proc.result(timeout=120)
            drops = drops_of(proc.pids) + result.pop("closed_socket_drops", 0)
        except (ListenerFailed, RuntimeError, ValueError, subprocess.SubprocessError) as err:
            self.failed(f"latency {name} rep {rep}", err)
            return
        finally:
            proc.close()
            with contextlib.suppress(RuntimeError):
                self.batch_lines([f"route del {route4(i, base=96)}/32" for i in range(n)])
        stamps = result.pop("stamps_ns")
        base = sends["send_rt_ns"] if name == "ip-monitor" else sends["send_ns"]
        samples = [(stamps[i] - base[i]) / 1000 for i in range(min(len(stamps), len(base)))]
        # The same from just before send(): never negative (a listener on an awake CPU can stamp the event
        # while the writer is still inside send(), after the notification went out).
        start = [s - r + t for s, r, t in zip(sends["send_start_ns"], sends["send_ns"], base, strict=True)]
        from_start = [(stamps[i] - start[i]) / 1000 for i in range(min(len(stamps), len(start)))]
        result.update(
            workload="latency",
            listener=name,
            rep=rep,
            expected=n,
            generated=n,
            lost=max(0, n - result["events"]),
            drops=drops,
            latency_us=percentiles(samples),
            latency_from_send_start_us=percentiles(from_start),
            cpu_us_per_event=result["cpu_s"] * 1e6 / max(1, result["events"]),
        )
        self.record(result)

    def idle(self, rep: int) -> None:
        procs: dict[str, Proc] = {}
        try:
            for name in IDLE_LISTENERS:
                procs[name] = self.start(name, self.listener_cmd(name, "route", 0, idle=True))
            for proc in procs.values():
                proc.ready()
            time.sleep(1.0)
            before = {name: [process_sample(pid) for pid in p.pids] for name, p in procs.items()}
            time.sleep(self.sizes.idle_s)
            after = {name: [process_sample(pid) for pid in p.pids] for name, p in procs.items()}
        except (ListenerFailed, RuntimeError, OSError) as err:
            self.failed(f"idle rep {rep}", err)
            return
        finally:
            for p in procs.values():
                p.close()
        for name in procs:
            delta = {
                key: sum(a[key] - b[key] for a, b in zip(after[name], before[name], strict=True))
                for key in ("voluntary", "involuntary", "cpu_ticks", "cpu_ns")
            }
            delta["threads"] = sum(a["threads"] for a in after[name])
            self.record(
                {"workload": "idle", "listener": name, "rep": rep, "seconds": self.sizes.idle_s, **delta}
            )

    def scale(self, rep: int) -> None:
        n, regs = self.sizes.scale_routes, self.sizes.scale_regs
        procs: list[Proc] = []
        lines = [f"route add {route4(i, base=112)}/32 via {GATEWAY4} dev nb0" for i in range(n)]
        try:
            truth = self.start("truth", self.listener_cmd("truth", "route", n))
            procs.append(truth)
            proc = self.start(
                "scale",
                [
                    sys.executable,
                    str(HERE / "listener.py"),
                    "scale",
                    "--regs",
                    str(regs),
                    "--target",
                    str(n),
                    "--quiet",
                    str(max(self.sizes.quiet_s, 5.0)),
                ],
            )
            procs.append(proc)
            truth.ready()
            proc.ready(timeout=600)
            gen_start = time.monotonic_ns()
            gen_s = self.batch_lines(lines)
            truth_result = truth.result(timeout=60)
            result = proc.result(timeout=900)
            drops = drops_of(proc.pids)
            proc.send("cancel\n")
            cancel = proc.result(timeout=300)
        except (ListenerFailed, RuntimeError, ValueError) as err:
            self.failed(f"scale rep {rep}", err)
            return
        finally:
            for p in procs:
                p.close()
            with contextlib.suppress(RuntimeError):
                self.batch_lines([f"route del {route4(i, base=112)}/32" for i in range(n)])
        result.pop("stamps_ns", None)
        result.update(
            workload="scale",
            listener="nn-count",
            rep=rep,
            expected=n * regs,
            generated=truth_result["events"],
            drops=drops,
            gen_s=gen_s,
            wall_s=(result["last_ns"] - gen_start) / 1e9,
            cpu_us_per_callback=result["cpu_s"] * 1e6 / max(1, result["events"]),
            **cancel,
        )
        self.record(result)

    def cancel(self, rep: int) -> None:
        proc = self.start(
            "cancel",
            [sys.executable, str(HERE / "listener.py"), "cancel", "--target", str(self.sizes.cancels)],
        )
        try:
            proc.ready(timeout=120)
            result = proc.result(timeout=60)
        except (ListenerFailed, ValueError) as err:
            self.failed(f"cancel rep {rep}", err)
            return
        finally:
            proc.close()
        self.record({"workload": "cancel", "listener": "nn-count", "rep": rep, **result})

    def tables(self, reps: int) -> None:
        n = self.sizes.table_routes
        try:
            install_s = self.batch_lines(
                [f"route add {route4(i)}/32 via {GATEWAY4} dev nb0" for i in range(n)]
            )
        except RuntimeError as err:
            self.failed("tables: installing the routes", err)
            return
        for rep in range(reps):
            self.guard()
            start = time.perf_counter()
            subprocess.run(["ip", "-o", "route", "show"], stdout=subprocess.DEVNULL, check=True)
            ip_s = time.perf_counter() - start
            proc = self.start("table", [sys.executable, str(HERE / "listener.py"), "table"])
            try:
                proc.ready(timeout=600)
                result = proc.result(timeout=60)
            except (ListenerFailed, ValueError) as err:
                self.failed(f"tables rep {rep}", err)
                continue
            finally:
                proc.close()
            self.record(
                {
                    "workload": "tables",
                    "listener": "nn",
                    "rep": rep,
                    "routes": n,
                    "install_s": install_s,
                    "ip_route_show_s": ip_s,
                    **result,
                }
            )


# ---------------------------------------------------------------- report


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def runs_of(runs: list[dict[str, Any]], workload: str, listener: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["workload"] == workload and r["listener"] == listener]


def med(runs: list[dict[str, Any]], key: str | Callable[[dict[str, Any]], float]) -> float:
    get = key if callable(key) else (lambda r: r[key])
    return median(get(r) for r in runs)


def fmt(value: float, digits: int = 2) -> str:
    if value != value:  # nan
        return "-"
    if abs(value) >= 100 and digits <= 2:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(value: float, base: float) -> float:
    return value / base if base > 0 and value == value else float("nan")


def machine_notes(load: str) -> list[tuple[str, str]]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])

    def out(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            return "?"
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"

    nn = out(
        [
            sys.executable,
            "-c",
            "import hashlib, os, time, netnotify; p = netnotify._netnotify.__file__; "
            "print(getattr(netnotify, '__version__', '?'), 'from', os.path.dirname(netnotify.__file__), "
            "'- extension sha256', hashlib.sha256(open(p, 'rb').read()).hexdigest()[:12], 'built', "
            "time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(p))))",
        ]
    )
    commit = out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", str(REPO), "status", "--porcelain", "--", "csrc", "src"])
    pyroute2 = out(
        [os.environ[ENV_PYROUTE2], "-c", "import importlib.metadata as m; print(m.version('pyroute2'))"]
    )

    def sysctl(name: str) -> str:
        return Path(f"/proc/sys/net/core/{name}").read_text().strip()

    return [
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", cpu),
        ("kernel", platform.release()),
        ("memory", f"{mem_kib / MiB:.1f} GiB"),
        ("Python", platform.python_version()),
        (
            "netnotify",
            f"{nn} (work tree at {commit}{', csrc/ or src/ changed' if dirty and dirty != '?' else ''})",
        ),
        ("iproute2", out(["ip", "-V"])),
        ("pyroute2", pyroute2),
        ("C compiler", out(["gcc", "--version"])),
        ("net.core.rmem_default / rmem_max", f"{sysctl('rmem_default')} / {sysctl('rmem_max')}"),
        ("load average at the start / end of the run (other work on the machine)", load),
    ]


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def report(bench: Bench, reps: int, workloads: list[Workload], seconds: float, command: str) -> str:
    s, runs = bench.sizes, bench.runs
    lines: list[str] = []
    add = lines.append
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    add("# netnotify benchmark results\n")
    add(
        f"Command: `{command}` (as root), {reps} repetition(s), median reported; run {now}, took "
        f"{seconds:.0f} s. Every figure is measured in this run on this machine; ratios (xC) are against "
        "the raw C reader `c` of the same run.\n"
    )
    add("## Machine\n")
    add("| | |\n| --- | --- |")
    for key, value in machine_notes(bench.load_start + " / " + loadavg()):
        add(f"| {key} | {value} |")
    add("")

    # ---- targets
    cpu = {
        (w.name, n): med(runs_of(runs, w.name, n), "cpu_us_per_event") for w in workloads for n in LISTENERS
    }
    route_ws = [w for w in workloads if w.kind == "route"]
    big = max(route_ws, key=lambda w: w.messages)

    def cpu_target(names: list[str], limit: float, ws: list[Workload]) -> tuple[str, bool | None]:
        parts, oks = [], []
        for w in ws:
            for n in names:
                r = ratio(cpu[(w.name, n)], cpu[(w.name, "c")])
                parts.append(f"{w.name} {n}: {fmt(r)}x")
                oks.append(r <= limit)
        return "; ".join(parts), (all(oks) if oks and all(o == o for o in oks) else None)

    add("## Targets\n")
    add("| target | measured | result |\n| --- | --- | --- |")
    # Every workload counts, the routes' bursts and the trickles of addresses and links alike (where each
    # event wakes the listener on its own); reading the prefix and next hop is a route listener's target.
    for label, names, limit, ws in (
        (
            "CPU per kernel message, counting callback ≤ 1.5x C (every workload)",
            ["nn-count"],
            1.5,
            workloads,
        ),
        (
            "CPU per kernel message, callback reading prefix and next hop ≤ 2.5x C (routes)",
            ["nn-read"],
            2.5,
            route_ws,
        ),
        (
            "CPU per kernel message, watchers ≤ 3x C (every workload)",
            ["watch", "watch-async"],
            3.0,
            workloads,
        ),
    ):
        text, ok = cpu_target(names, limit, ws)
        add(f"| {label} | {text} | {verdict(ok)} |")
    # What a watcher is up against: any Python reader of the socket pays the floor of its style (py-floor for
    # a blocking one, py-async-floor for asyncio), before any parsing.
    floors, _ = cpu_target(["py-floor", "py-async-floor"], 3.0, workloads)
    add(
        "| not a target, the floors of the watchers: a raw socket read in Python (py-floor, blocking) and by "
        f"asyncio (py-async-floor), nothing parsed | {floors} | for reference |"
    )
    for names, what in (
        (["nn-count", "nn-read"], "low-level callbacks"),
        (["watch", "watch-async"], "watchers"),
    ):
        parts, oks = [], []
        for n in names:
            rs = runs_of(runs, big.name, n)
            lost = [r["lost"] for r in rs]
            drops = [r["drops"] for r in rs]
            overflows = [r["overflows"] for r in rs]
            parts.append(
                f"{n}: lost {'/'.join(map(str, lost))}, drops {'/'.join(map(str, drops))}, "
                f"overflow reports {'/'.join(map(str, overflows))}"
            )
            oks.append(bool(rs) and not any(lost) and not any(drops) and not any(overflows))
        add(
            f"| zero events lost in the {big.messages // 2:,}-route burst, default settings, as root: {what} "
            f"(each repetition) | {'; '.join(parts)} | {verdict(all(oks) if oks else None)} |"
        )
    lat = {n: runs_of(runs, "latency", n) for n in LISTENERS}

    def lat_med(n: str, q: str, key: str = "latency_us") -> float:
        return med(lat[n], lambda r: r[key].get(q, float("nan")))

    def lat_ratio(n: str, q: str, key: str = "latency_us") -> float:
        return ratio(lat_med(n, q, key), lat_med("c", q, key))

    parts = []
    for n in ("nn-count", "nn-read", "watch", "watch-async"):
        parts.append(f"{n}: p50 {fmt(lat_ratio(n, 'p50'))}x, p99 {fmt(lat_ratio(n, 'p99'))}x")
    ok = None  # a baseline at or below zero (C stamped before the send returned) judges nothing
    if lat_med("c", "p50") > 0 and lat_med("c", "p99") > 0:
        ok = lat_ratio("nn-count", "p50") <= 1.5 and lat_ratio("nn-count", "p99") <= 2.0
    start = "latency_from_send_start_us"
    add(
        f"| latency p50 ≤ 1.5x C, p99 ≤ 2x C, from the send returning (judged on nn-count; C: p50 "
        f"{fmt(lat_med('c', 'p50'))} µs, p99 {fmt(lat_med('c', 'p99'))} µs) | {'; '.join(parts)} (from "
        f"the send starting, nn-count: p50 {fmt(lat_ratio('nn-count', 'p50', start))}x, p99 "
        f"{fmt(lat_ratio('nn-count', 'p99', start))}x) | {verdict(ok)} |"
    )
    idle_parts, idle_oks = [], []
    for n in ("nn-count", "watch", "watch-async"):
        rs = runs_of(runs, "idle", n)
        cs = max((r["voluntary"] + r["involuntary"] for r in rs), default=-1)
        ticks = max((r["cpu_ticks"] for r in rs), default=-1)
        idle_parts.append(f"{n}: {cs} context switches, {ticks} CPU ticks")
        idle_oks.append(bool(rs) and cs == 0 and ticks == 0)
    add(
        f"| idle: no CPU and no wake-ups over {s.idle_s:g} s (worst repetition) | {'; '.join(idle_parts)} | "
        f"{verdict(all(idle_oks) if idle_oks else None)} |"
    )
    sc = runs_of(runs, "scale", "nn-count")
    if sc:
        complete = min(r["regs_complete"] for r in sc)
        grew = max(r["threads_after_all"] - r["threads_after_1"] for r in sc)
        grew_during = max(r["threads_during"] - r["threads_after_1"] for r in sc)
        rss = med(sc, lambda r: (r["rss_after_all_kib"] - r["rss_after_1_kib"]) / max(1, r["regs"] - 1))
        add(
            f"| scale: {s.scale_regs:,} registrations all receive every event of a {s.scale_routes:,}-route "
            f"burst; threads do not grow; memory reported | {complete:,}/{s.scale_regs:,} complete (worst "
            f"repetition); threads +{max(grew, grew_during)} from 1 to {s.scale_regs:,} registrations; "
            f"{fmt(rss, 1)} KiB RSS per registration, peak RSS {fmt(med(sc, 'maxrss_kib') / 1024, 0)} MiB | "
            f"{verdict(complete == s.scale_regs and max(grew, grew_during) <= 0)} |"
        )
    else:
        add("| scale | failed | n/a |")
    cn = runs_of(runs, "cancel", "nn-count")
    if cn:
        worst = max(r["cancel_us"]["max"] for r in cn)
        p99 = med(cn, lambda r: r["cancel_us"]["p99"])
        worst_scale = max((r["cancel_us"]["max"] for r in sc if "cancel_us" in r), default=0.0)
        add(
            f"| cancel returns within 1 ms when no callback is running (every cancel of every repetition) | "
            f"one registration: p50 {fmt(med(cn, lambda r: r['cancel_us']['p50']))} µs, p99 {fmt(p99)} µs, "
            f"max {fmt(worst)} µs; each of {s.scale_regs:,} after the scale burst: max "
            f"{fmt(worst_scale)} µs | {verdict(max(worst, worst_scale) <= 1000)} |"
        )
    tb = runs_of(runs, "tables", "nn")
    if tb:
        t_nn, t_ip = med(tb, "seconds"), med(tb, "ip_route_show_s")
        add(
            f"| tables: listing {s.table_routes:,} routes ≤ 2x `ip -o route show` > /dev/null; memory "
            f"per row | {fmt(t_nn, 3)} s vs {fmt(t_ip, 3)} s = {fmt(ratio(t_nn, t_ip))}x; "
            f"{fmt(med(tb, 'bytes_per_row'), 0)} bytes per row | {verdict(t_nn <= 2 * t_ip)} |"
        )
    add("")

    # ---- bursts
    add("## Bursts\n")
    add(
        "Each listener runs alone with the truth reader beside it, one generator run each (`ip "
        "-batch`, its own process). *delivered* counts what the listener received: kernel messages "
        "for the C readers, `ip monitor` and pyroute2, notifications (ADD and DELETE) for netnotify. "
        "*expected* is what the truth reader counted, or for netnotify the notifications those "
        "messages make. *lost* = expected - delivered; *drops* is the Drops column of "
        "/proc/net/netlink for the listener's sockets; *overflows* are ENOBUFS errors seen "
        "(netnotify: reports through sys.unraisablehook). CPU is the listener's own, user + system, "
        "from subscribed to its last event, per kernel message it took in (netnotify's notifications "
        "count as the messages they come from: a link's message makes two); wall is from the generator's "
        "start to the listener's last event (~: a run that lost events ends by a quiet timeout, its last "
        "event is known to within 0.5 s).\n"
    )
    for w in workloads:
        rates = bench.generator_rates.get(w.name, [])
        add(f"### {w.name}: {w.title}\n")
        add(
            f"{w.messages:,} kernel messages, {w.nn_events:,} netnotify notifications; generator "
            f"{fmt(median(rates), 0)} messages/s.\n"
        )
        add(
            "| listener | delivered / expected | lost | drops | overflows | CPU µs/message | x C | wall s | "
            "peak RSS MiB |"
        )
        add("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        base = cpu[(w.name, "c")]
        for n in LISTENERS:
            rs = runs_of(runs, w.name, n)
            if not rs:
                add(f"| {n} | failed | | | | | | | |")
                continue
            approx = "" if all(r["complete"] for r in rs) else "~"
            add(
                f"| {n} | {fmt(med(rs, 'events'), 0)} / {fmt(med(rs, 'expected'), 0)} | "
                f"{fmt(med(rs, 'lost'), 0)} | {fmt(med(rs, 'drops'), 0)} | {fmt(med(rs, 'overflows'), 0)} | "
                f"{fmt(cpu[(w.name, n)])} | {fmt(ratio(cpu[(w.name, n)], base))} | "
                f"{approx}{fmt(med(rs, 'wall_s'), 3)} | {fmt(med(rs, 'maxrss_kib') / 1024, 1)} |"
            )
        add("")
        split = []
        for n in LISTENERS:
            rs = [r for r in runs_of(runs, w.name, n) if "busiest_other_thread_cpu_s" in r]
            if n in NETNOTIFY and rs:
                per = med(rs, "events") * w.messages / expected_per(w, n)
                dispatcher = med(rs, "busiest_other_thread_cpu_s") * 1e6 / max(1.0, per)
                consumer = med(rs, "main_thread_cpu_s") * 1e6 / max(1.0, per)
                split.append(f"{n} {fmt(dispatcher)} / {fmt(consumer)}")
        if split:
            add(
                "netnotify's CPU µs per message by thread, the dispatcher / the main thread (a watcher's "
                f"consumer): {'; '.join(split)}.\n"
            )

    # ---- latency
    add("## Latency\n")
    add(
        f"{s.latency_count:,} route adds, {s.latency_interval_us / 1000:g} ms apart, each sent by "
        "benchmarks/nlwriter.c on its own netlink socket (pinned to CPU 0, the listener to the other "
        "CPUs); latency is from the writer's send() returning (CLOCK_MONOTONIC) to the event reaching"
        " the consumer (the callback; the `for`/`async for` body; pyroute2's get() returning; `ip "
        "monitor`'s own -ts stamp, in CLOCK_REALTIME against the writer's CLOCK_REALTIME). A listener "
        "whose CPU is awake can stamp the event before the writer's send() has returned (the kernel "
        "still builds the acknowledgement): the columns from the send starting are never negative.\n"
    )
    add(
        "| listener | delivered | p50 µs | x C | p99 µs | x C | max µs | from send start: p50 µs | x C | "
        "p99 µs | x C |"
    )
    add("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in LISTENERS:
        rs = lat[n]
        if not rs:
            add(f"| {n} | failed | | | | | | | | | |")
            continue
        add(
            f"| {n} | {fmt(med(rs, 'events'), 0)} / {s.latency_count:,} | {fmt(lat_med(n, 'p50'), 1)} | "
            f"{fmt(lat_ratio(n, 'p50'))} | {fmt(lat_med(n, 'p99'), 1)} | {fmt(lat_ratio(n, 'p99'))} | "
            f"{fmt(lat_med(n, 'max'), 1)} | {fmt(lat_med(n, 'p50', start), 1)} | "
            f"{fmt(lat_ratio(n, 'p50', start))} | {fmt(lat_med(n, 'p99', start), 1)} | "
            f"{fmt(lat_ratio(n, 'p99', start))} |"
        )
    add("")

    # ---- idle
    add("## Idle\n")
    add(
        f"Each listener subscribed to routes, nothing changing, for {s.idle_s:g} s (after 1 s to "
        "settle), all at once. Context switches summed over the process's threads "
        "(/proc/PID/task/*/status), CPU from /proc/PID/stat (ticks) and schedstat (ns). For `ip "
        "monitor`, the ip process. Worst repetition.\n"
    )
    add("| listener | voluntary | involuntary | CPU ticks | CPU µs | threads |")
    add("| --- | --- | --- | --- | --- | --- |")
    for n in IDLE_LISTENERS:
        rs = runs_of(runs, "idle", n)
        if not rs:
            add(f"| {n} | failed | | | | |")
            continue
        add(
            f"| {n} | {max(r['voluntary'] for r in rs)} | {max(r['involuntary'] for r in rs)} | "
            f"{max(r['cpu_ticks'] for r in rs)} | {fmt(max(r['cpu_ns'] for r in rs) / 1000, 1)} | "
            f"{rs[0]['threads']} |"
        )
    add("")

    # ---- scale, cancel, tables
    add("## Scale\n")
    if sc:
        add(
            f"One process, {s.scale_regs:,} `notify_route_change2` registrations (a counting callback each), "
            f"then {s.scale_routes:,} route adds in one burst.\n"
        )
        r0 = sc[0]
        rows = [
            ("registrations complete", fmt(med(sc, "regs_complete"), 0)),
            ("fewest events of a registration", fmt(med(sc, "min_per_reg"), 0)),
            (
                "callbacks delivered / expected",
                fmt(med(sc, lambda r: r["events"] / max(1, r["expected"])), 4),
            ),
            ("kernel drops (all sockets)", fmt(med(sc, "drops"), 0)),
            ("overflow reports", fmt(med(sc, "overflows"), 0)),
            (
                "threads: before / after 1 / after all / during the burst / after cancel (first repetition)",
                f"{r0['threads_before']} / {r0['threads_after_1']} / {r0['threads_after_all']} / "
                f"{r0['threads_during']} / {r0['threads_after_cancel']}",
            ),
            ("time to register the others, s", fmt(med(sc, "register_all_s"), 3)),
            ("RSS after 1 registration, MiB", fmt(med(sc, "rss_after_1_kib") / 1024, 1)),
            ("RSS after all registrations, MiB", fmt(med(sc, "rss_after_all_kib") / 1024, 1)),
            ("RSS after the burst, MiB", fmt(med(sc, "rss_end_kib") / 1024, 1)),
            ("peak RSS, MiB", fmt(med(sc, "maxrss_kib") / 1024, 1)),
            ("CPU µs per callback", fmt(med(sc, "cpu_us_per_callback"))),
            ("wall s, generator start to the last callback", fmt(med(sc, "wall_s"), 3)),
            (
                "cancel of each registration with the others live, p50 / p99 / max µs",
                " / ".join(fmt(med(sc, lambda r, q=q: r["cancel_us"][q]), 1) for q in ("p50", "p99", "max")),
            ),
        ]
        add("| | median |\n| --- | --- |")
        for label, value in rows:
            add(f"| {label} | {value} |")
        add("")
    add("## Cancel\n")
    if cn:
        add(
            f"{s.cancels} times: register `notify_route_change2`, wait 5 ms (idle, no callback "
            "running), time `handle.cancel()`.\n"
        )
        add("| p50 µs | p99 µs | max µs |\n| --- | --- | --- |")
        add(
            " | ".join(
                ["", *(fmt(med(cn, lambda r, q=q: r["cancel_us"][q]), 1) for q in ("p50", "p99", "max")), ""]
            ).strip()
        )
        add("")
    add("## Tables\n")
    if tb:
        add(
            f"{s.table_routes:,} IPv4 routes in the main table. `get_ip_forward_table2(AF_INET)` timed"
            " in a fresh process (the call only); `ip -o route show > /dev/null` timed from start to "
            "exit. Memory: RSS growth of the process holding the returned list.\n"
        )
        add("| | median |\n| --- | --- |")
        add(f"| rows returned | {fmt(med(tb, 'rows'), 0)} |")
        add(f"| get_ip_forward_table2, s | {fmt(med(tb, 'seconds'), 3)} |")
        add(f"| ip -o route show, s | {fmt(med(tb, 'ip_route_show_s'), 3)} |")
        add(f"| ratio | {fmt(ratio(med(tb, 'seconds'), med(tb, 'ip_route_show_s')))}x |")
        add(f"| memory per row, bytes | {fmt(med(tb, 'bytes_per_row'), 0)} |")
        add(f"| peak RSS, MiB | {fmt(med(tb, 'maxrss_kib') / 1024, 1)} |")
        add(f"| installing the routes with ip -batch, s | {fmt(tb[0]['install_s'], 2)} |")
        add("")

    add("## Listeners and method\n")
    for n in LISTENERS:
        add(f"- `{n}`: {DESCRIPTION[n]}")
    add(f"- truth: the same C reader with a {TRUTH_RCVBUF // MiB} MiB buffer, beside every run.")
    add(
        "- Namespaces: the harness re-executes itself under `unshare --net`; a veth pair nb0/nb1 has "
        "its far end in a second namespace (`unshare --net sleep`); every `ip` change checks the "
        "namespace inode first."
    )
    add(
        "- CPU for `ip monitor` is the ip process's (schedstat); reading its output is not counted. "
        "pyroute2's loop re-opens its socket after ENOBUFS (pyroute2's documented recovery): what was"
        " queued and what arrives meanwhile is lost, and only the drops counted before each close are"
        " in *drops*."
    )
    add("- Peak RSS is VmHWM of the listener process (ru_maxrss would carry the harness's own over fork).")
    add(
        "- Every repetition's figures are in the .json file beside this report. On a small machine shared "
        "with other work, the C baseline's CPU per event moves from run to run (by up to a third where this "
        "harness was written: 3.0 to 4.0 µs per route event), so a ratio close to its limit can go either "
        "way in another run."
    )
    if bench.errors:
        add("\n## Errors\n")
        for e in bench.errors:
            add(f"- {e}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- preparing, outside the namespaces


def prepare(tmp: Path) -> str:
    """Compiles the C reader and finds (or installs) pyroute2; returns the interpreter that has pyroute2."""
    for program in ("nlreader", "nlwriter"):
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-o", str(tmp / program), str(HERE / f"{program}.c")], check=True
        )
    if importlib.util.find_spec("netnotify") is None:
        raise SystemExit(
            f"netnotify is not installed for {sys.executable}: install the repo first "
            "(python -m pip install .)"
        )
    if importlib.util.find_spec("pyroute2") is not None:
        return sys.executable
    venv = HERE / ".venv"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import pyroute2"]
    if not python.exists() or subprocess.run(check, capture_output=True, check=False).returncode != 0:
        print(f"installing {PYROUTE2_REQUIREMENT} into {venv}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PYROUTE2_REQUIREMENT,
            ],
            check=True,
        )
    return str(python)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for a smoke test (well under a minute)"
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3, or 1 with --quick)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="the Markdown report")
    args = parser.parse_args(argv)
    if sys.platform != "linux" or os.geteuid() != 0:
        raise SystemExit("the benchmark needs Linux and root (it creates network namespaces)")

    host = os.environ.get(ENV_HOST_NETNS)
    if host is None:  # in the machine's namespace: prepare, then re-execute in a private one
        tmp = Path(tempfile.mkdtemp(prefix="nnbench-"))
        env = dict(os.environ)
        env[ENV_PYROUTE2] = prepare(tmp)
        env[ENV_HOST_NETNS] = str(netns_inode())
        env[ENV_TMP] = str(tmp)
        script = str(Path(__file__).resolve())
        argv_out = list(sys.argv[1:] if argv is None else argv)
        # unshare execs the interpreter: the child's pid is the inner run's, which SIGTERM ends cleanly.
        inner = subprocess.Popen(["unshare", "--net", "--", sys.executable, script, *argv_out], env=env)
        signal.signal(signal.SIGTERM, lambda signum, frame: inner.terminate())
        try:
            return inner.wait()
        except KeyboardInterrupt:
            inner.terminate()
            return inner.wait()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    host_netns = int(host)
    # SIGTERM ends the run through the `finally` blocks: listeners and the far namespace's holder are ended.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if netns_inode() == host_netns:
        raise SystemExit("refusing to run: still in the machine's own network namespace")
    tmp = Path(os.environ[ENV_TMP])
    sizes = QUICK if args.quick else FULL
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)
    command = (
        "python benchmarks/run.py"
        + (" --quick" if args.quick else "")
        + (f" --reps {args.reps}" if args.reps is not None else "")
    )
    workloads = [
        route_workload(sizes.routes_small),
        route_workload(sizes.routes_big),
        address_workload(sizes.addresses),
        veth_workload(sizes.veths),
    ]
    for w in workloads:
        for i, phase in enumerate(w.phases):
            w.paths.append(tmp / f"{w.name}.{i}.batch")
            w.paths[-1].write_text("".join(line + "\n" for line in phase))
    started = time.monotonic()
    bench = Bench(args, sizes, tmp, host_netns)
    try:
        bench.setup()
        for rep in range(reps):
            for w in workloads:
                for name in LISTENERS:
                    bench.burst(w, name, rep)
            for name in LISTENERS:
                bench.latency(name, rep)
            bench.idle(rep)
            bench.scale(rep)
            bench.cancel(rep)
        bench.tables(reps)
    finally:
        bench.teardown()
    text = report(bench, reps, workloads, time.monotonic() - started, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {"sizes": sizes.__dict__, "reps": reps, "runs": bench.runs, "errors": bench.errors}, indent=1
        )
    )
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
