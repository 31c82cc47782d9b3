"""A local CoinGecko v3 stand-in on 127.0.0.1 that speaks the real wire format (tests/fixtures/coingecko).

- `/api/v3/ping`, `/api/v3/simple/price`, `/api/v3/coins/{id}/ohlc?vs_currency=usd&days=N`: OHLC rows are
  `[close_ms, o, h, l, c]`, 30-minute candles for days 1-2, 4-hour for 3-30, 4-day beyond (CoinGecko's
  auto-granularity), plus the candle still forming (stamped with its future close), as CoinGecko serves it.
- Prices are DERIVED from the bundled real 2024 Binance hourly candles (shared/adapters/market_data/candles):
  each hour is split into two 30-minute halves (open -> midpoint, midpoint -> close, both with the hour's high and
  low), so the two halves aggregate back to exactly the bundled hour, and 4-hour candles aggregate four hours.
  They are not CoinGecko's own numbers (no long public recording exists, see fixtures/coingecko/README.md).
- Plans: a `public` (api.coingecko.com) or `pro` (pro-api) host, answering a wrong key header with the
  recorded 400 10010/10011 bodies and a missing Pro key with the recorded 401 10002 body.
- Scripted failures per path prefix: recorded 429 (retry-after), 5xx, slow answers (timeouts), malformed JSON,
  wrong shapes; `edit_rows` rewrites a coin's rows (gaps, duplicates, bad prices).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.domain.model import Asset
from shared.services.seed import DEFAULT_ASSETS
from tests.standin_http import Reply, send_reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "coingecko"
HALF_HOUR_MS = 30 * 60 * 1000
HOUR = timedelta(hours=1)
Row = list[Any]  # [close_ms, open, high, low, close]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def recorded(name: str) -> Reply:
    data = fixture(name)
    headers = {k: v for k, v in data.get("headers", {}).items() if k.lower() in ("retry-after",)}
    return Reply(data["status"], data["body"], headers)


def rate_limited(retry_after: str | None = "119") -> Reply:
    reply = recorded("error_429_rate_limit.json")
    return Reply(429, reply.body, {"retry-after": retry_after} if retry_after is not None else {})


def server_error(status: int = 503) -> Reply:
    return Reply(status, "<html><body>503 Service Temporarily Unavailable</body></html>")


@cache
def _hourly(symbol: str) -> dict[int, tuple[Decimal, Decimal, Decimal, Decimal]]:
    """Bundled 1h candles by OPEN time in ms."""
    provider = ReplayMarketDataProvider()
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    candles = provider.fetch_candles([Asset(symbol, symbol, symbol.lower())], start=start, end=end)
    return {int(c.open_time.timestamp() * 1000): (c.open, c.high, c.low, c.close) for c in candles}


def half_hour_rows(symbol: str, first_close_ms: int, last_close_ms: int) -> list[Row]:
    rows: list[Row] = []
    hourly = _hourly(symbol)
    for close_ms in range(first_close_ms, last_close_ms + 1, HALF_HOUR_MS):
        open_ms = close_ms - HALF_HOUR_MS
        hour_open = open_ms - open_ms % (2 * HALF_HOUR_MS)
        hour = hourly.get(hour_open)
        if hour is None:
            continue
        o, h, low, c = hour
        mid = ((o + c) / 2).quantize(Decimal("0.00000001"))
        rows.append([close_ms, o, h, low, mid] if open_ms == hour_open else [close_ms, mid, h, low, c])
    return rows


def four_hour_rows(symbol: str, first_close_ms: int, last_close_ms: int) -> list[Row]:
    return whole_hour_rows(symbol, first_close_ms, last_close_ms, step=8 * HALF_HOUR_MS)


def whole_hour_rows(symbol: str, first_close_ms: int, last_close_ms: int, *, step: int) -> list[Row]:
    """Rows of `step` (a whole number of hours) aggregated from the bundled hours, each stamped with its close."""
    rows: list[Row] = []
    hourly = _hourly(symbol)
    for close_ms in range(first_close_ms, last_close_ms + 1, step):
        hours = [hourly.get(close_ms - step + i * 2 * HALF_HOUR_MS) for i in range(step // (2 * HALF_HOUR_MS))]
        if any(h is None for h in hours):
            continue
        parts = [h for h in hours if h is not None]
        rows.append([close_ms, parts[0][0], max(p[1] for p in parts), min(p[2] for p in parts), parts[-1][3]])
    return rows


def rows_json(rows: list[Row], *, strings: bool = False) -> str:
    """Numbers written from their Decimal text, as a JSON encoder of the real API writes them; with `strings`,
    every price as a JSON string ("76975.12"), as CoinGecko has sent them before."""

    def value(index: int, v: Any) -> str:
        return json.dumps(str(v)) if (strings and index > 0) or isinstance(v, str) else str(v)

    return "[" + ",".join("[" + ",".join(value(i, v) for i, v in enumerate(row)) + "]" for row in rows) + "]"


class CoinGeckoStandIn:
    def __init__(self, *, host_kind: str = "public", now: datetime | None = None) -> None:
        self.host_kind = host_kind  # "public" (keyless/Demo) or "pro"
        self.now = now or datetime(2024, 3, 10, tzinfo=UTC)
        self.coins = {a.coingecko_id: a.symbol for a in DEFAULT_ASSETS}
        self.scripts: dict[str, deque[Reply]] = {}
        self.outage: Reply | None = None  # answered to every request while set
        self.row_edits: dict[str, Callable[[list[Row]], list[Row]]] = {}
        # CoinGecko's granularity differs by plan, by `interval=` and over the years: force one (ms) for every
        # `days`, e.g. hourly rows for days=1; None keeps the public auto-granularity.
        self.granularity_ms: int | None = None
        self.string_numbers = False  # prices as JSON strings
        self.requests: list[dict[str, Any]] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        # A short poll interval: `shutdown` waits for it, once per test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/api/v3"

    def script(self, path_prefix: str, *replies: Reply) -> None:
        """Replies for requests whose path (after /api/v3) starts with `path_prefix`, in order, once each."""
        with self._lock:
            self.scripts.setdefault(path_prefix, deque()).extend(replies)

    def edit_rows(self, coin_id: str, edit: Callable[[list[Row]], list[Row]]) -> None:
        self.row_edits[coin_id] = edit

    def paths(self) -> list[str]:
        with self._lock:
            return [r["path"] for r in self.requests]

    def start(self) -> CoinGeckoStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------ behaviour of the real API

    def _scripted(self, path: str) -> Reply | None:
        with self._lock:
            if self.outage is not None:
                return self.outage
            for prefix, queue in self.scripts.items():
                if path.startswith(prefix) and queue:
                    return queue.popleft()
        return None

    def _auth_error(self, headers: dict[str, str]) -> Reply | None:
        demo, pro = headers.get("x-cg-demo-api-key"), headers.get("x-cg-pro-api-key")
        if self.host_kind == "public" and pro:
            return recorded("error_400_pro_key_on_public_host_10010.json")
        if self.host_kind == "pro" and demo:
            return recorded("error_400_demo_key_on_pro_host_10011.json")
        if self.host_kind == "pro" and not pro:
            return recorded("error_401_missing_api_key_10002.json")
        return None

    def _ohlc(self, coin_id: str, query: dict[str, list[str]]) -> Reply:
        symbol = self.coins.get(coin_id)
        if symbol is None:
            return Reply(404, {"error": "coin not found"})
        if query.get("vs_currency") != ["usd"] or "days" not in query:
            return Reply(400, {"error": "Missing parameter vs_currency or days"})
        days = int(query["days"][0])
        now_ms = int(self.now.timestamp() * 1000)
        step = HALF_HOUR_MS if days <= 2 else 8 * HALF_HOUR_MS if days <= 30 else 192 * HALF_HOUR_MS
        step = self.granularity_ms or step
        forming = now_ms - now_ms % step + step  # the candle still forming, stamped with its future close
        first = now_ms - days * 86_400_000
        first += -first % step
        if step == HALF_HOUR_MS:
            rows = half_hour_rows(symbol, first, forming)
        else:
            rows = whole_hour_rows(symbol, first, forming, step=step)
        edit = self.row_edits.get(coin_id)
        return Reply(200, rows_json(edit(rows) if edit else rows, strings=self.string_numbers))

    def _simple_price(self, query: dict[str, list[str]]) -> Reply:
        ids = query.get("ids", [""])[0].split(",")
        now_ms = int(self.now.timestamp() * 1000)
        body: dict[str, Any] = {}
        for coin_id in ids:
            symbol = self.coins.get(coin_id)
            if symbol is None:
                continue
            rows = half_hour_rows(symbol, now_ms - now_ms % HALF_HOUR_MS - 4 * HALF_HOUR_MS, now_ms)
            body[coin_id] = {"usd": float(rows[-1][4]), "last_updated_at": now_ms // 1000}
        return Reply(200, body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                path = url.path.removeprefix("/api/v3")
                query = parse_qs(url.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append({"path": path, "query": query, "headers": headers})
                reply = server._scripted(path) or server._auth_error(headers) or self._route(path, query)
                if reply.hang:
                    server._release.wait(60)
                    return
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self._send(reply)

            def _route(self, path: str, query: dict[str, list[str]]) -> Reply:
                if path == "/ping":
                    return Reply(200, fixture("ping.json"))
                if path == "/simple/price":
                    return server._simple_price(query)
                parts = path.strip("/").split("/")
                if len(parts) == 3 and parts[0] == "coins" and parts[2] == "ohlc":
                    return server._ohlc(parts[1], query)
                return Reply(404, {"error": "Incorrect path. Please check https://www.coingecko.com/api/"})

            def _send(self, reply: Reply) -> None:
                send_reply(self, reply, content_type="application/json; charset=utf-8")

        return Handler


def running_standin(**kwargs: Any) -> Iterator[CoinGeckoStandIn]:
    server = CoinGeckoStandIn(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()
