"""How the local race writes its logs to the console, in the race's process and in its API process alike."""

from __future__ import annotations

import logging

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """Leaves out tracebacks (other handlers, e.g. telemetry, still get them from the record)."""

    def formatException(self, ei: object) -> str:
        return ""

    def formatStack(self, stack_info: str) -> str:
        return ""


def configure_console_logging(level: int | str, *, verbose: bool) -> None:
    """The progress line is the local race's output; the jobs' structured logs are for Azure (or --verbose).
    Without --verbose an error is one line between the cycle lines; its traceback is for --verbose."""
    logging.basicConfig(level=level if verbose else logging.WARNING, format=CONSOLE_FORMAT)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(OneLineFormatter(CONSOLE_FORMAT))
