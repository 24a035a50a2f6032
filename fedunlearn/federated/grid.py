"""A Grid that stops waiting when the simulation engine has died.

Flower's in-memory Grid waits for replies until its timeout (an hour in a
strategy round, for ever in a plain query). When the engine under it crashes
(Ray failed to start, a node process was killed) no reply will ever come, and
the ServerApp's thread would keep the process alive. :class:`WatchedGrid`
polls the same way but also checks an event that ``run_scenario`` sets when
the engine fails, and then raises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from flwr.app import Message
from flwr.serverapp import Grid

from fedunlearn.errors import FedunlearnError

PULL_INTERVAL_S = 0.05


class EngineStopped(FedunlearnError):
    """The simulation engine stopped while the server waited for replies."""


class WatchedGrid(Grid):
    """Delegates to ``inner``; ``send_and_receive`` gives up as soon as ``abort`` is set."""

    def __init__(self, inner: Grid, abort: threading.Event) -> None:
        self.inner, self.abort = inner, abort

    def set_run(self, run) -> None:  # type: ignore[no-untyped-def]
        self.inner.set_run(run)

    @property
    def run(self):  # type: ignore[no-untyped-def]
        return self.inner.run

    def create_message(self, *args, **kwargs) -> Message:  # type: ignore[no-untyped-def]
        return self.inner.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def get_nodes(self):  # type: ignore[no-untyped-def]
        return self.inner.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        waiting = set(self.push_messages(messages))
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        while waiting and (deadline is None or time.monotonic() < deadline):
            if self.abort.is_set():
                raise EngineStopped(
                    "the simulation engine stopped while the server waited for the hospitals"
                )
            got = list(self.pull_messages(waiting))
            replies += got
            waiting -= {m.metadata.reply_to_message_id for m in got}
            if waiting:
                time.sleep(PULL_INTERVAL_S)
        return replies
