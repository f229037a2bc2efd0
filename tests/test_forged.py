"""The Linux backend believes only the kernel: forged rtnetlink messages from user space are ignored.

The scenario is tests/forgery.py (its docstring says what the kernel lets a sender do). Each variant forges
notifications (new and deleted routes of both families, a new address, an MTU change, a link going down, a
new interface) to every socket netnotify opened, unicast and multicast, and forged dump replies to the dump
sockets; a naive listener that skips the sender check receives and decodes every forgery, so the test can
fail; netnotify's callbacks and watch() see none of them, and see the same changes once they are made for
real (positive control: the test cannot pass by being deaf).
"""

from __future__ import annotations

import json
import os
from typing import Any

import forgery
import pytest
from nettest import NetNS, run_python

pytestmark = pytest.mark.linux

FORGED_KINDS = 8  # forgery.run_scenario forges eight notifications
TARGETS = 6  # 3 low-level registrations + the watcher's 3: one subscribed and one dump socket each


def check(report: dict[str, Any]) -> None:
    assert report["unicast_targets"] == TARGETS
    assert report["unicast_sent"] == FORGED_KINDS * (TARGETS + 1)  # + the naive listener
    assert sorted(report["multicast_groups"]) == [1, 1, 1, 5, 7, 7, 11, 11]  # RTNLGRP_*
    assert report["naive_received"] == 2 * FORGED_KINDS  # unicast and multicast copies
    assert report["naive_kinds"] == ["address", "link", "route"]
    assert report["events_after_real_changes"] > 0
    assert report["dump_targets"] == TARGETS
    assert report["dump_replies_sent"] == TARGETS * len(forgery.SEQUENCES) * 3
    assert report["dump_sockets_drained"] == TARGETS
    assert report["flood_drops"] > 0


def test_forgeries_by_root_in_the_namespace_are_ignored(ns: NetNS) -> None:
    report = forgery.run_scenario(ns, "root in the test's network namespace")
    check(report.__dict__)


def test_forgeries_by_an_unprivileged_user_in_a_user_namespace_are_ignored(ns: NetNS) -> None:
    if getattr(os, "geteuid", lambda: -1)() != 0:
        pytest.skip("the variant starts as root to drop to uid 65534 (the interpreter may not be theirs)")
    done = run_python([forgery.__file__, "--unprivileged"], timeout=120)
    if done.returncode == forgery.SKIP_EXIT:
        pytest.skip(f"no unprivileged user namespace here: {done.stdout.strip()}")
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    report = json.loads(done.stdout.splitlines()[-1])
    check(report)
    # Before it had a namespace of its own, the same user could forge nothing: the kernel said EPERM.
    assert report["refused_without_capability"] == ["unicast", "multicast"]
