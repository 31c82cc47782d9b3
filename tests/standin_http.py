"""What the local HTTP stand-ins (CoinGecko, OpenAI-compatible LLMs) share: a scripted reply and how it is sent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str -> sent as is (malformed bodies on purpose)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hang: bool = False  # never answer, until the server stops


def send_reply(handler: BaseHTTPRequestHandler, reply: Reply, *, content_type: str = "application/json") -> None:
    body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
    data = body.encode()
    try:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout): nothing to do
        pass
