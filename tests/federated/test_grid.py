"""WatchedGrid: the server stops waiting as soon as the simulation engine has died."""

from __future__ import annotations

import threading
import time

import pytest

from fedunlearn.federated.grid import EngineStopped, WatchedGrid


class _SilentGrid:
    """A grid whose nodes never answer (as when the engine under it crashed); counts the polls."""

    def __init__(self, replies: dict[str, object] | None = None) -> None:
        self.replies = replies or {}
        self.pulls = 0

    def push_messages(self, messages):
        return [f"m{i}" for i, _ in enumerate(messages)]

    def pull_messages(self, ids):
        self.pulls += 1
        return [self.replies.pop(i) for i in list(ids) if i in self.replies]


def _messages(n: int) -> list[object]:
    return [object() for _ in range(n)]  # the stand-in grid only counts them


def test_abort_ends_the_wait_at_once() -> None:
    abort = threading.Event()
    grid = WatchedGrid(_SilentGrid(), abort)  # type: ignore[arg-type]
    threading.Timer(0.3, abort.set).start()
    t0 = time.monotonic()
    with pytest.raises(
        EngineStopped, match="the simulation engine stopped while the server waited"
    ):
        grid.send_and_receive(
            _messages(2)
        )  # no timeout: without the event this would wait for ever
    assert time.monotonic() - t0 < 5


def test_replies_are_collected_until_all_arrived_or_the_timeout() -> None:
    class _Reply:
        def __init__(self, to: str) -> None:
            self.metadata = type("M", (), {"reply_to_message_id": to})()

    inner = _SilentGrid({"m0": _Reply("m0")})
    grid = WatchedGrid(inner, threading.Event())  # type: ignore[arg-type]
    got = list(grid.send_and_receive(_messages(2), timeout=0.3))
    assert [r.metadata.reply_to_message_id for r in got] == ["m0"] and inner.pulls > 1
