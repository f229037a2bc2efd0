"""The command line's argument errors. Portable: nothing is registered, so it runs on every platform."""

from __future__ import annotations

from nettest import NetNS, run_python


def test_watch_with_a_bogus_option_exits_2(isolated: NetNS | None) -> None:
    done = run_python(["-m", "netnotify", "watch", "--bogus"], timeout=60)
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, done.stderr
    assert "--bogus" in errors[0]
