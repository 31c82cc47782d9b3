"""A fake container for the HTTP API: in-memory `RaceQueries` with realistic rows and job methods that
record their calls. The app under test is the real `create_app`, driven in-process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.api.app import create_app
from shared.config import Settings
from shared.domain.cycles import floor_time
from shared.domain.model import Agent, Candle
from shared.services.ports import (
    AgentSummary,
    DecisionRow,
    EquityPoint,
    Page,
    PriceRow,
    RaceStatus,
    TradeRow,
)
from shared.services.race_clock import JobTimeRefused
from shared.services.replay import DecisionNotFoundError, DecisionOutcome, ReplayAgentError, ReplayResult
from shared.services.statistics_ports import StoredStatistics
from tests.statistics_fakes import FakeStatisticsRepository, sample_statistics

T0 = datetime(2024, 3, 1, tzinfo=UTC)
ADMIN_KEY = "test-admin-key"
REPLAYABLE_DECISION = 500
DASHBOARD_ORIGIN = "https://dashboard.example.test"
STARTING_CASH = Decimal("100000")

AGENTS = {
    1: Agent(1, "momentum", "baseline", "momentum", strategy="momentum", params={"lookback": 24}),
    2: Agent(2, "llama-3.1-8b", "llama", "llama-3.1-8b-instant", strategy="llm"),
    3: Agent(3, "random", "baseline", "random", active=False, inactive_reason="retired after 3 failures"),
}


def _summary(
    agent_id: int, equity: str | None, cash: str, trades: int, fees: str, usage: tuple[int, int, str] = (0, 0, "0")
) -> AgentSummary:
    marked = Decimal(equity) if equity is not None else None
    return AgentSummary(
        agent=AGENTS[agent_id],
        cash=Decimal(cash),
        equity=marked,
        equity_at=T0 + timedelta(hours=47) if marked is not None else None,
        return_pct=((marked - STARTING_CASH) / STARTING_CASH * 100).quantize(Decimal("0.0001")) if marked else None,
        max_drawdown_pct=Decimal("1.2500") if marked else None,
        trades=trades,
        fees_paid=Decimal(fees),
        positions={"BTC": Decimal("0.25000000")} if trades else {},
        prompt_tokens=usage[0],
        completion_tokens=usage[1],
        llm_cost_usd=Decimal(usage[2]),
    )


@dataclass
class FakeRaceQueries:
    """Three agents, two days of hourly equity for agent 1, some trades and decisions, BTC and ETH candles."""

    ping_error: Exception | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = RaceStatus(cycles=48, first_cycle=T0, last_cycle=T0 + timedelta(hours=47), last_finished_at=T0)
        self.summaries = {
            1: _summary(1, "104250.12345678", "84250.12345678", 12, "37.51000000"),
            2: _summary(2, "99100.00000000", "99100.00000000", 3, "9.90000000", (58_560, 7_200, "0.04024800")),
            3: _summary(3, None, "100000.00000000", 0, "0"),
        }
        self.equity = [
            EquityPoint(T0 + timedelta(hours=h), Decimal(100000 + 100 * h), Decimal("84250.12345678"), Decimal(0))
            for h in range(48)
        ]
        self.trades_by_agent = {
            1: [
                TradeRow(
                    id=100 + i,
                    agent_id=1,
                    cycle_time=T0 + timedelta(hours=i),
                    symbol="BTC",
                    side="BUY" if i % 2 == 0 else "SELL",
                    quantity=Decimal("0.01000000"),
                    price=Decimal("61234.50000000"),
                    notional=Decimal("612.34500000"),
                    fee=Decimal("0.61234500"),
                )
                for i in reversed(range(12))  # newest first, as the real query returns them
            ]
        }
        self.decisions_by_agent = {
            1: [
                DecisionRow(
                    id=500 + i,
                    agent_id=1,
                    cycle_time=T0 + timedelta(hours=i),
                    status="ok",
                    reasoning=f"momentum is positive over 24h (cycle {i})",
                    confidence=0.62,
                    hold_reason=None,
                    orders=[{"symbol": "BTC", "side": "BUY", "quantity": "0.01"}],
                    rejections=[],
                    trades=1,
                    snapshot_sha256="ab" * 32,
                    data_staleness_seconds=12.5,
                    latency_ms=3.2,
                    prompt_tokens=None,
                    completion_tokens=None,
                    cost_usd=Decimal("0.00012000"),
                    decided_at=T0 + timedelta(hours=i, seconds=4),
                )
                for i in reversed(range(5))
            ]
        }
        self.candle_rows = {
            symbol: [
                Candle(symbol, "1h", T0 + timedelta(hours=h), price, price + 10, price - 10, price + 5, Decimal(12))
                for h in range(24)
            ]
            for symbol, price in (("BTC", Decimal("61000.5")), ("ETH", Decimal("3400.25")))
        }

    def _record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))

    def calls_to(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for called, kwargs in self.calls if called == name]

    def ping(self) -> None:
        self._record("ping")
        if self.ping_error is not None:
            raise self.ping_error

    def agent_summaries(self, *, starting_cash: Decimal) -> list[AgentSummary]:
        self._record("agent_summaries", starting_cash=starting_cash)
        return list(self.summaries.values())

    def agent_summary(self, agent_id: int, *, starting_cash: Decimal) -> AgentSummary | None:
        self._record("agent_summary", agent_id=agent_id, starting_cash=starting_cash)
        return self.summaries.get(agent_id)

    def equity_series(
        self, agent_id: int, *, start: datetime | None, end: datetime | None, max_points: int
    ) -> list[EquityPoint]:
        self._record("equity_series", agent_id=agent_id, start=start, end=end, max_points=max_points)
        points = [
            p
            for p in (self.equity if agent_id == 1 else [])
            if (start is None or p.at >= start) and (end is None or p.at <= end)
        ]
        stride = max(1, -(-len(points) // max_points))
        return points[::stride]

    def trades(self, agent_id: int, *, limit: int, offset: int) -> Page[TradeRow]:
        self._record("trades", agent_id=agent_id, limit=limit, offset=offset)
        rows = self.trades_by_agent.get(agent_id, [])
        return Page(rows[offset : offset + limit], len(rows), limit, offset)

    def decisions(self, agent_id: int, *, limit: int, offset: int) -> Page[DecisionRow]:
        self._record("decisions", agent_id=agent_id, limit=limit, offset=offset)
        rows = self.decisions_by_agent.get(agent_id, [])
        return Page(rows[offset : offset + limit], len(rows), limit, offset)

    def latest_prices(self) -> list[PriceRow]:
        self._record("latest_prices")
        return [PriceRow(s, rows[-1].close, rows[-1].close_time) for s, rows in self.candle_rows.items()]

    def candles(
        self, symbol: str, interval: str, *, start: datetime | None, end: datetime | None, limit: int
    ) -> list[Candle]:
        self._record("candles", symbol=symbol, interval=interval, start=start, end=end, limit=limit)
        rows = [c for c in self.candle_rows.get(symbol, []) if c.interval == interval]
        return rows[-limit:]

    def known_symbols(self) -> set[str]:
        return set(self.candle_rows)

    def race_status(self) -> RaceStatus:
        self._record("race_status")
        return self.status


@dataclass(frozen=True)
class FakeReport:
    job: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "at": self.at.isoformat(), "written": 3}


@dataclass
class FakeContainer:
    """Quacks like `shared.bootstrap.Container`: settings, queries and the three jobs (recorded, not run)."""

    settings: Settings
    queries: FakeRaceQueries = field(default_factory=FakeRaceQueries)
    job_calls: list[tuple[str, datetime]] = field(default_factory=list)
    dependencies: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    refuse_job_time: str | None = None  # admin_job_time raises JobTimeRefused with this message
    # Statistics computed after the last cycle for agents 1 and 2 (agent 3, the random trader, is a control).
    statistics: FakeStatisticsRepository | None = field(default_factory=lambda: fake_statistics())

    def dependency_checks(self) -> dict[str, tuple[str, str | None]]:
        return dict(self.dependencies)

    def cycle_time(self, now: datetime) -> datetime:
        return floor_time(now, timedelta(minutes=self.settings.race.cycle_minutes))

    def admin_job_time(self, job: str, requested: datetime | None) -> datetime:
        if self.refuse_job_time is not None:
            raise JobTimeRefused(self.refuse_job_time)
        at = requested or datetime.now(UTC)
        return self.cycle_time(at) if job == "run-agents" else at

    def run_market_data_job(self, now: datetime) -> FakeReport:
        self.job_calls.append(("market-data", now))
        return FakeReport("market-data", now)

    def run_agents_job(self, cycle_time: datetime) -> FakeReport:
        self.job_calls.append(("run-agents-sync", cycle_time))
        return FakeReport("run-agents", cycle_time)

    async def run_agents_job_async(self, cycle_time: datetime) -> FakeReport:
        self.job_calls.append(("run-agents", cycle_time))
        return FakeReport("run-agents", cycle_time)

    def run_equity_job(self, at: datetime) -> FakeReport:
        self.job_calls.append(("equity-snapshot", at))
        return FakeReport("equity-snapshot", at)

    async def replay_decision(
        self, decision_id: int, *, agent_id: int | None = None, provider: str | None = None, model: str | None = None
    ) -> ReplayResult:
        """Decision 500 replays (identically on its own model, as a HOLD on another); any other id is unknown."""
        self.job_calls.append(("replay", T0))
        if decision_id != REPLAYABLE_DECISION:
            raise DecisionNotFoundError(f"decision {decision_id} not found")
        if agent_id is not None and agent_id not in AGENTS:
            raise ReplayAgentError(f"agent {agent_id} not found")
        buy = DecisionOutcome(
            [{"symbol": "BTC", "side": "BUY", "quantity": "0.01", "notional_usd": None}], "momentum", 0.62, None, [], []
        )
        other = agent_id is not None or provider is not None
        counterfactual = DecisionOutcome([], "HOLD: timeout", None, "timeout", [], []) if other else buy
        settings = {"provider": "baseline", "model": "momentum", "params": {}}
        return ReplayResult(
            REPLAYABLE_DECISION,
            1,
            T0,
            "ab" * 32,
            buy,
            counterfactual,
            settings,
            {"provider": provider or "baseline", "model": model or "momentum", "params": {}},
            "momentum",
            1.5,
        )


def fake_statistics() -> FakeStatisticsRepository:
    computed_for = T0 + timedelta(hours=47)
    by_agent = {agent_id: sample_statistics(agent_id, controls={3: "random"}) for agent_id in (1, 2)}
    return FakeStatisticsRepository(
        stored=StoredStatistics(computed_for, computed_for + timedelta(seconds=2), by_agent)
    )


def make_settings(**api: Any) -> Settings:
    values = {
        "AdminKey": ADMIN_KEY,
        "CorsOrigins": f"{DASHBOARD_ORIGIN}, http://localhost:5173",
        "MaxPageSize": 20,
        "MaxEquityPoints": 24,
        "MaxCandles": 100,
    }
    values.update(api)
    return Settings(Api=values)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def container() -> FakeContainer:
    return FakeContainer(settings=make_settings())


@pytest.fixture
def app(container: FakeContainer) -> FastAPI:
    return create_app(lambda: container)  # type: ignore[arg-type, return-value]


def client_for(app: FastAPI) -> httpx.AsyncClient:
    # httpx's ASGI transport rather than starlette's TestClient, which warns (and warnings are errors here).
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str, *, mentions: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert mentions.lower() in error["message"].lower(), error["message"]
    return error
