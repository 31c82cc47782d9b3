"""An OpenAI-compatible chat-completions client (Groq, Together.ai, OpenAI, Azure OpenAI, Ollama, llama.cpp).

One HTTP attempt per `complete()` call: retries, rate limits and the circuit breaker live in the agent, so this
class only speaks the wire format and maps every failure onto the project's exceptions (`TransientError` for
what a retry may fix, `PermanentError` for the rest). The API key is sent in a header and never appears in an
exception message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from shared.adapters.echo_scrub import scrub_echo
from shared.adapters.resilience import (
    CallTimeoutError,
    PermanentError,
    RateLimitedError,
    TransientError,
    retry_hint,
)

# 408 (request timeout), 409 (Azure: concurrent update), 425, 5xx and Cloudflare's 52x are worth a retry.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 500, 502, 503, 504, 520, 522, 524, 529})
MAX_ERROR_TEXT = 300


@dataclass(frozen=True, slots=True)
class ChatEndpoint:
    """Where and how to post: the full URL and the auth header (kept out of repr: it holds the key)."""

    url: str
    auth_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    # Together/Groq/OpenAI accept `model` in the body; an Azure deployment names its model in the URL.
    sends_model: bool = True

    @classmethod
    def openai_compatible(cls, base_url: str, api_key: str | None) -> ChatEndpoint:
        """`{base_url}/chat/completions` with `Authorization: Bearer` (no header for a keyless local server)."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return cls(f"{base_url.rstrip('/')}/chat/completions", headers)

    @classmethod
    def azure_openai(cls, endpoint: str, deployment: str, api_version: str, api_key: str) -> ChatEndpoint:
        url = (
            f"{endpoint.rstrip('/')}/openai/deployments/{quote(deployment, safe='')}/chat/completions"
            f"?api-version={quote(api_version, safe='')}"
        )
        return cls(url, {"api-key": api_key}, sends_model=False)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: Sequence[Mapping[str, str]]
    model: str
    temperature: float
    max_tokens: int
    json_mode: bool = True
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ChatCompletion:
    """The model's text and the usage the provider reported (None when it reported none)."""

    content: str
    raw_body: str
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None = None
    model: str | None = None


class ModelOutputRejectedError(PermanentError):
    """The provider refused what the model generated (Groq's JSON mode: 400 `json_validate_failed`).
    `failed_generation` is the model's text, which the agent still records and tries to parse."""

    def __init__(self, message: str, *, status: int | None, failed_generation: str) -> None:
        super().__init__(message, status=status)
        self.failed_generation = failed_generation


class LoopLocalHttpClient:
    """One `httpx.AsyncClient` per event loop. The Functions host runs each timer invocation in a fresh
    `asyncio.run`, and a pooled connection opened on a closed loop cannot be reused, while the local race
    keeps one loop for hours: both get a pool that works."""

    def __init__(self, make_client: Callable[[], httpx.AsyncClient]) -> None:
        self._make_client = make_client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._loop.is_closed():
            self._client, self._loop = self._make_client(), loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = self._loop = None


class ChatCompletionsClient:
    """Posts one chat-completions request; `http` is an injected client (tests: a stand-in server or
    `httpx.MockTransport`) or a `LoopLocalHttpClient`."""

    def __init__(
        self, *, endpoint: ChatEndpoint, http: httpx.AsyncClient | LoopLocalHttpClient, timeout: httpx.Timeout
    ) -> None:
        self.endpoint, self._http, self.timeout = endpoint, http, timeout

    def _client(self) -> httpx.AsyncClient:
        return self._http.get() if isinstance(self._http, LoopLocalHttpClient) else self._http

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [dict(m) for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stream": False,
        }
        if self.endpoint.sends_model:
            body["model"] = request.model
        if request.json_mode:
            body["response_format"] = {"type": "json_object"}
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        try:
            response = await self._client().post(
                self.endpoint.url,
                json=self.payload(request),
                headers={**self.endpoint.auth_headers, "Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise CallTimeoutError(f"timeout: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:  # connect refused, reset, protocol error: the server may come back
            raise TransientError(f"connection error: {type(exc).__name__}") from exc
        return _read_response(response)


def _read_response(response: httpx.Response) -> ChatCompletion:
    status, text = response.status_code, response.text
    if status >= 400:
        text = scrub_echo(text, response)  # a 401 body may repeat the key
    if status == 429:
        raise RateLimitedError(
            f"HTTP 429: {_error_message(text)}", status=status, retry_after=retry_hint(response.headers, text)
        )
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TransientError(
            f"HTTP {status}: {_error_message(text)}", status=status, retry_after=retry_hint(response.headers, text)
        )
    if status >= 400:
        error = _error_object(text)
        if error.get("code") == "json_validate_failed" and isinstance(error.get("failed_generation"), str):
            raise ModelOutputRejectedError(
                f"HTTP {status}: {_error_message(text)}", status=status, failed_generation=error["failed_generation"]
            )
        raise PermanentError(f"HTTP {status}: {_error_message(text)}", status=status)
    if not 200 <= status < 300:
        raise PermanentError(f"unexpected HTTP {status}", status=status)
    try:
        body = json.loads(text)
        choice = body["choices"][0]
        message = choice.get("message") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise PermanentError(f"malformed response envelope: {_clip(text)!r}", status=status) from exc
    content = message.get("content")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return ChatCompletion(
        content=content if isinstance(content, str) else "",  # null content (e.g. a tool call): nothing to parse
        raw_body=text,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        finish_reason=choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None,
        model=body.get("model") if isinstance(body.get("model"), str) else None,
    )


def _error_object(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _error_message(text: str) -> str:
    """The vendor's error message (OpenAI shape: {"error": {"message": ...}}), clipped; else the raw text."""
    message = _error_object(text).get("message")
    return _clip(message if isinstance(message, str) else text)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "..."


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
