"""Rendered GET responses, reused until the database changes: under load, a leaderboard is rendered once per
data version and then answered from memory (or as a bodiless 304), instead of once per request.

Keyed by (path, normalized query, data version): the version (`shared.adapters.db.data_version`) moves after any
committed write, by any process, so a new cycle, equity mark or statistics row is in the next answer, at most
`Api__ResponseCacheMaxAgeSeconds` later. Only 200s are stored (errors, with their request ids, never are); at
most `Api__ResponseCacheMegabytes` in all, least recently used out first, and everything of an older version is
dropped when the version moves. One render per key and version: concurrent misses wait for the first.

It sits outside `ETagMiddleware`, whose validator (the body's hash) it stores with the body, and answers
If-None-Match itself; CORS headers are added outside it, per request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.api.etag import etag_matches

if TYPE_CHECKING:
    from shared.bootstrap import Container

logger = logging.getLogger(__name__)

# Answers that are not a function of the stored data: live dependency checks, and the docs' static files.
UNCACHED_PREFIXES = ("/api/health", "/api/docs")
MAX_ENTRY_FRACTION = 8  # one answer may take at most an eighth of the cache


class DataVersion(Protocol):
    def fresh(self) -> str | None: ...
    def current(self) -> str: ...


@dataclass(frozen=True, slots=True)
class CacheConfig:
    version: DataVersion
    max_bytes: int


@dataclass(frozen=True, slots=True)
class RenderedResponse:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str | None

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(name) + len(value) for name, value in self.headers) + 64


class RenderedResponses:
    """The store: an LRU of at most `max_bytes` (bodies plus headers), holding one data version at a time."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.version: str | None = None
        self.bytes = 0
        self._entries: OrderedDict[str, RenderedResponse] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, version: str, key: str) -> RenderedResponse | None:
        if version != self.version:
            return None
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, version: str, key: str, response: RenderedResponse) -> bool:
        if response.size > self.max_bytes // MAX_ENTRY_FRACTION:
            return False
        if version != self.version:
            self._entries.clear()
            self.bytes, self.version = 0, version
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.bytes -= previous.size
        self._entries[key] = response
        self.bytes += response.size
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.size
        return True


def response_cache_config(container: Container) -> CacheConfig | None:
    """The cache of the wired app: off without a data version (a hand-built container) or with 0 megabytes."""
    megabytes = container.settings.api.response_cache_megabytes
    if container.data_version is None or megabytes <= 0:
        return None
    return CacheConfig(container.data_version, megabytes << 20)


def cache_key(scope: Scope) -> str:
    """Path plus the query in a canonical order: `?b=2&a=1` is `?a=1&b=2`, `%41` is `A`; repeated keys keep
    the order of their values (it can matter to the route)."""
    query = scope.get("query_string", b"").decode("latin-1")
    pairs = sorted(parse_qsl(query, keep_blank_values=True), key=lambda pair: pair[0])
    path: str = scope["path"]
    return f"{path}?{urlencode(pairs)}" if pairs else path


class RenderedResponseCache:
    """ASGI middleware. `config_provider` is called per request until it answers (the container is built on the
    first request); None, or an exception, means the request goes through uncached."""

    def __init__(
        self,
        app: ASGIApp,
        config_provider: Callable[[], CacheConfig | None],
        prefixes: Iterable[str] = ("/api/",),
        uncached_prefixes: Iterable[str] = UNCACHED_PREFIXES,
    ) -> None:
        self.app = app
        self.config_provider = config_provider
        self.prefixes = tuple(prefixes)
        self.uncached_prefixes = tuple(uncached_prefixes)
        self.store: RenderedResponses | None = None
        self._disabled = False
        self._version: DataVersion | None = None
        self._lock = threading.Lock()  # the store is used from the event loop; a test may run several loops
        self._renders: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[RenderedResponse | None]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._cacheable_request(scope) or not self._configured():
            await self.app(scope, receive, send)
            return
        data_version, store = self._version, self.store
        assert data_version is not None
        assert store is not None
        try:
            version = data_version.fresh()
            if version is None:  # a read of the database is due: off the event loop
                version = await asyncio.to_thread(data_version.current)
        except Exception:  # the database is down: the route answers (its 503), uncached
            logger.debug("data version unavailable; request served uncached", exc_info=True)
            await self.app(scope, receive, send)
            return
        key = cache_key(scope)
        with self._lock:
            cached = store.get(version, key)
        if cached is None:
            cached = await self._render_once(version, key, scope, receive, send)
            if cached is None:
                return  # not storable: the route's own answer has been sent
        await _send_rendered(cached, Headers(scope=scope).get("if-none-match"), send)

    def _cacheable_request(self, scope: Scope) -> bool:
        # A long poll's answer depends on when it is asked, not only on the data: a stored one would answer the
        # next poll at once and turn an idle dashboard's one request per `wait` into a tight loop.
        return (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(self.prefixes)
            and not scope["path"].startswith(self.uncached_prefixes)
            and not _is_long_poll(scope)
        )

    def _configured(self) -> bool:
        if self.store is None and not self._disabled:
            try:
                config = self.config_provider()
            except Exception:  # no container yet (bad settings): uncached, and asked again next time
                return False
            if config is None or config.max_bytes <= 0:
                self._disabled = True
            else:
                self._version, self.store = config.version, RenderedResponses(config.max_bytes)
        return self.store is not None

    async def _render_once(
        self, version: str, key: str, scope: Scope, receive: Receive, send: Send
    ) -> RenderedResponse | None:
        """Render `key` at `version`, or wait for the render already running. Returns the answer to send, or
        None when this request's own answer went out already (an error, or a body too big to store)."""
        loop = asyncio.get_running_loop()
        flight_key = f"{version}\n{key}"
        running = self._renders.get(flight_key)
        if running is not None and running[0] is loop:
            shared = await asyncio.shield(running[1])
            if shared is not None:
                return shared
        future: asyncio.Future[RenderedResponse | None] = loop.create_future()
        self._renders[flight_key] = (loop, future)
        rendered: RenderedResponse | None = None
        try:
            rendered = await self._render(scope, receive, send)
            if rendered is not None:
                assert self.store is not None
                with self._lock:
                    self.store.put(version, key, rendered)
            return rendered
        finally:
            if self._renders.get(flight_key, (None, None))[1] is future:
                del self._renders[flight_key]
            future.set_result(rendered)

    async def _render(self, scope: Scope, receive: Receive, send: Send) -> RenderedResponse | None:
        """Run the app without If-None-Match (the full body is what is stored) and collect a 200. Anything else
        (an error with its request id, a cookie, a body past the entry limit) goes straight to `send`: None."""
        assert self.store is not None
        limit = self.store.max_bytes // MAX_ENTRY_FRACTION
        headers = [(name, value) for name, value in scope["headers"] if name != b"if-none-match"]
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        passthrough = False

        async def collect(message: Message) -> None:
            nonlocal start, size, passthrough
            if passthrough:
                await send(message)
            elif message["type"] == "http.response.start":
                if message["status"] != 200 or "set-cookie" in Headers(raw=message["headers"]):
                    passthrough = True
                    await send(message)
                else:
                    start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > limit and start is not None:
                    passthrough = True
                    await send(start)
                    more = message.get("more_body", False)
                    await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": more})
            else:
                await send(message)

        await self.app({**scope, "headers": headers}, receive, collect)
        if passthrough:
            return None
        if start is None:
            raise RuntimeError("the app finished without a response")
        response_headers = list(start["headers"])
        return RenderedResponse(response_headers, b"".join(chunks), Headers(raw=response_headers).get("etag"))


async def _send_rendered(rendered: RenderedResponse, if_none_match: str | None, send: Send) -> None:
    if rendered.etag is not None and etag_matches(if_none_match, rendered.etag):
        headers = MutableHeaders(raw=list(rendered.headers))
        for name in ("content-length", "content-type"):
            if name in headers:
                del headers[name]
        await send({"type": "http.response.start", "status": 304, "headers": headers.raw})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": rendered.headers})
    await send({"type": "http.response.body", "body": rendered.body})


def _is_long_poll(scope: Scope) -> bool:
    return any(name == "wait" for name, _ in parse_qsl(scope.get("query_string", b"").decode("latin-1")))
