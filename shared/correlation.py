"""Correlation ids of the work in progress (invocation, cycle, agent), carried by context variables.

Every log record gets them as attributes (`invocation_id`, `cycle_id`, `agent_id`; None outside such work), so
Application Insights shows them as custom dimensions and a query can follow one cycle or one agent. Standard
library only: services set them, the telemetry adapter exports them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

invocation_id: ContextVar[str | None] = ContextVar("invocation_id", default=None)
cycle_id: ContextVar[str | None] = ContextVar("cycle_id", default=None)
agent_id: ContextVar[int | None] = ContextVar("agent_id", default=None)

_VARS: dict[str, ContextVar[Any]] = {"invocation_id": invocation_id, "cycle_id": cycle_id, "agent_id": agent_id}


@contextmanager
def correlated(**ids: Any) -> Iterator[None]:
    """Set some of the ids for the block (and the tasks it starts); unknown names are refused."""
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, Any]:
    return {name: var.get() for name, var in _VARS.items()}


_installed = False


def install_log_record_factory() -> None:
    """Stamp the ids on every log record, whichever handler (console, OpenTelemetry) writes it. Idempotent."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        for name, var in _VARS.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
