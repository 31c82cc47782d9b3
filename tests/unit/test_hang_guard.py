"""The hang guard's watchdog, on a socket pair: a call still blocked past its deadline has its socket shut
down (the blocked read wakes up to an end of stream), a call that ends in time is left alone."""

from __future__ import annotations

import socket
import time

from shared.adapters.db.hang_guard import Watchdog


def test_a_call_blocked_past_its_deadline_is_cut() -> None:
    watchdog = Watchdog(tick_s=0.05)
    ours, theirs = socket.socketpair()  # `theirs` never answers: a stopped server
    with ours, theirs:
        started = time.monotonic()
        with watchdog.deadline(0.3, ours.fileno(), "a statement"):
            assert ours.recv(1) == b""  # woken by the shutdown, not by an answer
        took = time.monotonic() - started
        assert 0.25 < took < 2
        assert watchdog.expired == 1
        assert ours.fileno() != -1  # the descriptor is still the caller's to close


def test_a_call_that_ends_in_time_is_left_alone() -> None:
    watchdog = Watchdog(tick_s=0.05)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with watchdog.deadline(0.2, ours.fileno(), "a statement"):
            theirs.sendall(b"x")
            assert ours.recv(1) == b"x"
        time.sleep(0.4)  # past the deadline, but the call has left
        theirs.sendall(b"y")
        assert ours.recv(1) == b"y"  # the socket still works
        assert watchdog.expired == 0
