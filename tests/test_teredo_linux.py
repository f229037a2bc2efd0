"""Teredo is a Windows tunnel: on Linux both Teredo calls raise NotSupportedError (ERROR_NOT_SUPPORTED)."""

from __future__ import annotations

from typing import Any

import pytest
from nettest import NetNS

import netnotify

pytestmark = pytest.mark.linux(reason="Linux has no Teredo; tests/test_windows.py covers Windows")


def noop(*args: object) -> None:
    pass


def test_teredo_is_not_supported_on_linux(ns: NetNS) -> None:
    notify: Any = netnotify.notify_teredo_port_change
    with pytest.raises(netnotify.NotSupportedError) as caught:
        notify(noop)
    assert caught.value.winerror == 50
    with pytest.raises(netnotify.NotSupportedError) as caught:
        netnotify.get_teredo_port()
    assert caught.value.winerror == 50
    assert isinstance(caught.value, netnotify.NetioError)
