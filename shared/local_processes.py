"""The helper processes the local race starts beside itself: ml_service (the Custom ML agent's service) on a
free loopback port, and the opt-in local LLM (llama.cpp); each stops when the race does."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from shared.config import PROJECT_ROOT, Settings

LOCAL_LLM_OFF = "not configured: Local__LocalLlm is off (`make run LOCAL_LLM=1` starts its llama.cpp server)"


@dataclass(frozen=True)
class LocalLlm:
    """The opt-in local LLM racer in this run: `base_url` of its running llama.cpp server, or why it sits out.
    `enabled` (Local__LocalLlm) adds the agent to a database that does not have it yet."""

    enabled: bool = False
    base_url: str | None = None
    unavailable: str = LOCAL_LLM_OFF


class MlServiceStartError(Exception):
    """ml_service did not become ready; the message says why and where its log is."""


class MlServiceProcess:
    """ml_service as a second process on a free loopback port (uvicorn), with a fresh random API key."""

    def __init__(self, *, host: str = "127.0.0.1", ready_timeout_s: float = 90.0, log_path: Path | None = None) -> None:
        self.host, self.ready_timeout_s = host, ready_timeout_s
        self.log_path = log_path or PROJECT_ROOT / "data" / "ml_service.log"
        self.api_key = secrets.token_urlsafe(32)
        self.port = _free_port(host)
        self.base_url = f"http://{host}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start the service and wait for `/health/ready`; returns the model version. MlServiceStartError if it
        exits or is not ready in time (the process is stopped then)."""
        import httpx

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MlService__ApiKey": self.api_key, "PYTHONPATH": str(PROJECT_ROOT)}
        command = [sys.executable, "-m", "uvicorn", "ml_service.app:create_app", "--factory"]
        command += ["--host", self.host, "--port", str(self.port), "--log-level", "warning"]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log_file, stderr=log_file)  # noqa: S603
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MlServiceStartError(f"it exited with code {self.process.returncode}: {self._log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{self.base_url}/health/ready", timeout=1.0)
                if ready.status_code == 200:
                    return str(ready.json()["model"]["version"])
            time.sleep(0.1)
        self.stop()
        raise MlServiceStartError(f"not ready after {self.ready_timeout_s:.0f}s: {self._log_tail()}")

    def stop(self) -> None:
        """Terminate (SIGTERM: uvicorn shuts down cleanly), then kill if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return f"no log at {self.log_path}"
        # The exception line says why (a traceback ends with it; uvicorn then adds "startup failed").
        errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
        last = errors[-1] if errors else (lines[-1] if lines else "no output")
        return f"{last} (log: {self.log_path})"


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def start_ml_service(
    settings: Settings, *, log_path: Path | None = None
) -> tuple[Settings, MlServiceProcess | None, str | None]:
    """Start ml_service for the local race unless `CustomMlAgent__BaseUrl` already points at one. Returns the
    settings the race should use, the process to stop at exit, and why the ML agent sits out (None if it races)."""
    if settings.custom_ml.base_url is not None:
        print(f"ML agent uses the configured service at {settings.custom_ml.base_url}", flush=True)
        return settings, None, None
    from pydantic import SecretStr

    service = MlServiceProcess(host=settings.local.host, log_path=log_path)
    try:
        version = service.start()
    except (MlServiceStartError, OSError) as exc:
        reason = f"ML service not available: it did not start ({exc})"
        print(f"{reason}; the Custom ML agent sits this race out", flush=True)
        return settings, None, reason
    print(f"ML service on {service.base_url} (model {version}): the Custom ML agent races", flush=True)
    custom_ml = settings.custom_ml.model_copy(
        update={"base_url": service.base_url, "api_key": SecretStr(service.api_key)}
    )
    return settings.model_copy(update={"custom_ml": custom_ml}), service, None


def start_local_llm(settings: Settings, stack: contextlib.ExitStack) -> LocalLlm:
    """With `Local__LocalLlm`, start SmolLM2-135M on a local llama.cpp server for the life of `stack` (it is
    stopped when the stack closes). If it cannot start, the race runs without it and says why."""
    if not settings.local.local_llm:
        return LocalLlm()
    from shared.adapters.agents.llm.local_server import LocalLlamaServer, LocalModelUnavailableError

    port = settings.local.local_llm_port
    try:
        if not port_is_free("127.0.0.1", port):
            raise LocalModelUnavailableError(f"port {port} is in use (set Local__LocalLlmPort to a free one)")
        print(f"Starting the local LLM (SmolLM2-135M on llama.cpp, port {port}) ...", flush=True)
        server = LocalLlamaServer(port=port)
        stack.callback(server.stop)  # before start: a Ctrl-C while it loads still stops the process
        server.start()
    except (LocalModelUnavailableError, OSError) as exc:
        reason = f"not available: the local llama.cpp server did not start ({exc})"
        print(f"Local LLM {reason}; the local agent sits this race out", flush=True)
        return LocalLlm(enabled=True, unavailable=reason)
    timeout = settings.race.agent_timeout_seconds
    note = "" if timeout >= 45 else f" (Race__AgentTimeoutSeconds={timeout:g} is short for it: try 60)"
    print(f"Local LLM on {server.base_url}: it races, 10-25 s a decision on a small CPU{note}", flush=True)
    return LocalLlm(enabled=True, base_url=server.base_url)


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now. SO_REUSEADDR as servers set it, so the connections of a
    race stopped a moment ago (TIME_WAIT) do not count; on Windows that option would steal a port instead."""
    with socket.socket() as probe:
        if os.name != "nt":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
