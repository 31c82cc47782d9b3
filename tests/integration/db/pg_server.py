"""A throwaway PostgreSQL server of the test's own (never the shared test server) that a test may stop, start,
freeze (SIGSTOP) and thaw: for outages and hung databases."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pytest


class PostgresServer:
    """initdb'd in a temporary folder, listening on a free loopback port."""

    def __init__(self, root: Path) -> None:
        bins = sorted(glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            pytest.fail("PostgreSQL binaries are not installed (apt-get install postgresql)", pytrace=False)
        self.bin, self.root = Path(bins[-1]), root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.getuid() == 0:
            shutil.chown(root, "postgres")
        self._run("initdb", "-A", "trust", "-U", "postgres", "-D", str(root / "data"))

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if os.getuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-w", "-o", options, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def processes(self) -> list[int]:
        """The postmaster and every process it started (the backends serving open connections)."""
        postmaster = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        children: list[int] = []
        for stat in glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:  # field 4, ppid (after the command name in parentheses)
                    children.append(int(Path(stat).parent.name))
        return [postmaster, *children]

    def freeze(self) -> None:
        """Hang the server: every process stopped, its sockets still open (the kernel keeps accepting)."""
        for pid in self.processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.processes():
            os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def throwaway_server() -> Iterator[PostgresServer]:
    """A started server, stopped and removed afterwards (the `server` fixture of conftest.py)."""
    root = Path(tempfile.mkdtemp(prefix="trading-race-pg."))  # not under pytest's root-only folder
    server = PostgresServer(root)
    server.start()
    try:
        yield server
    finally:
        _remove(server, root)


def _remove(server: PostgresServer, root: Path) -> None:
    with contextlib.suppress(Exception):
        server.thaw()
    with contextlib.suppress(subprocess.CalledProcessError):
        server.stop()
    shutil.rmtree(root, ignore_errors=True)
