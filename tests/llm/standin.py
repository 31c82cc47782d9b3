"""A local OpenAI-compatible stand-in server: `POST .../chat/completions` on 127.0.0.1, replies scripted per
model name, replaying the recorded envelopes and 429 bodies of tests/fixtures/llm.

Threaded (`http.server`), so concurrent agents are served concurrently, as a real provider would, and a reply
can be delayed (latency) or held until the test ends (a hanging provider).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.llm.helpers import completion_envelope, fixture
from tests.standin_http import Reply, send_reply


def decision_reply(content: str | None, *, delay_s: float = 0.0, model: str = "llama-3.3-70b-versatile") -> Reply:
    return Reply(body=completion_envelope(content, model=model), delay_s=delay_s)


def groq_429(index: int = 0, *, headers: dict[str, str] | None = None) -> Reply:
    """A recorded Groq 429 body, with the documented header set (values illustrative, per Groq's docs)."""
    recorded = fixture("groq_error_429_rate_limit.json")
    documented = {k: v for k, v in recorded["documented_headers_example"].items() if not k.startswith("_")}
    return Reply(429, recorded["bodies"][index]["body"], headers if headers is not None else documented)


def together_429() -> Reply:
    return Reply(429, fixture("together_error_429_rate_limit.json")["bodies"][0]["body"])


def server_error(status: int = 503) -> Reply:
    return Reply(status, {"error": {"message": "Service Unavailable", "type": "internal_server_error"}})


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops the SYNs of a burst of concurrent agents, which then wait out
    # TCP's 1 s retransmit: a latency no real provider adds.
    request_queue_size = 128


class StandInServer:
    def __init__(self) -> None:
        self.scripts: dict[str, deque[Reply]] = {}
        self.defaults: dict[str, Reply] = {}
        self.default = decision_reply('{"orders": [], "reasoning": "flat market", "confidence": 0.5}')
        self.requests: list[dict[str, Any]] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def script(self, model: str, *replies: Reply) -> None:
        """Replies for this model, in order; after them, `always(model, ...)` or the server default."""
        with self._lock:
            self.scripts.setdefault(model, deque()).extend(replies)

    def always(self, model: str, reply: Reply) -> None:
        self.defaults[model] = reply

    def next_reply(self, model: str) -> Reply:
        with self._lock:
            queue = self.scripts.get(model)
            if queue:
                return queue.popleft()
        return self.defaults.get(model, self.default)

    def start(self) -> StandInServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let hanging handlers finish
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers.items()), "json": request})
                if not self.path.rstrip("/").endswith("/chat/completions") and "/chat/completions?" not in self.path:
                    self._send(Reply(404, {"error": {"message": f"no route {self.path}"}}))
                    return
                reply = server.next_reply(str(request.get("model", self._deployment())))
                if reply.hang:
                    server._release.wait(60)
                    return
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self._send(reply)

            def _deployment(self) -> str:
                parts = self.path.split("/")
                return parts[parts.index("deployments") + 1] if "deployments" in parts else ""

            def _send(self, reply: Reply) -> None:
                send_reply(self, reply, content_type="application/json")

        return Handler


def running_standin() -> Iterator[StandInServer]:
    server = StandInServer().start()
    try:
        yield server
    finally:
        server.stop()
