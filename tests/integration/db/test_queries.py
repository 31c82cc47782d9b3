"""The read side behind the HTTP API: summaries with the latest equity, pages, series, prices, candles."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from shared.adapters.db.queries import SqlAlchemyRaceQueries
from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
from shared.domain.model import Asset, EquitySnapshot, Portfolio, Position
from shared.services.ports import CycleRecord, RaceStatus
from tests.integration.db.builders import HOUR, T0, agent, candle, decision_record, hourly

START = Decimal(100_000)


@pytest.fixture
def race(uow_factory: SqlAlchemyUnitOfWorkFactory) -> tuple[int, int, int]:
    """Three agents: one trading with a history, one with only a portfolio, one brand new."""
    with uow_factory() as uow:
        trader, idle, new = (uow.agents.add(agent(name)).id for name in ("trader", "idle", "new"))
        uow.portfolios.save(
            Portfolio(trader, Decimal(50_000), {"BTC": Position(Decimal("1.5"), Decimal(40_000))}, Decimal(60), 6)
        )
        uow.portfolios.save(Portfolio(idle, START))
        snapshot = EquitySnapshot.first(trader, at=T0, equity=START, cash=START)
        for hour, equity in enumerate([100_000, 110_000, 99_000, 104_500], start=0):
            snapshot = snapshot.next(at=T0 + hour * HOUR, equity=Decimal(equity), cash=Decimal(50_000))
            uow.equity.add(snapshot)
        uow.equity.add(EquitySnapshot.first(idle, at=T0, equity=START, cash=START))
        for hour in range(5):
            uow.decisions.add(decision_record(trader, T0 + hour * HOUR, trades=2 if hour % 2 else 0))
        uow.commit()
    return trader, idle, new


def test_summaries_join_portfolio_positions_and_the_latest_equity(
    queries: SqlAlchemyRaceQueries, race: tuple[int, int, int]
) -> None:
    trader, idle, new = race
    summaries = {s.agent.id: s for s in queries.agent_summaries(starting_cash=START)}

    assert list(summaries) == [trader, idle, new]
    top = summaries[trader]
    assert (top.equity, top.equity_at, top.cash) == (Decimal(104_500), T0 + 3 * HOUR, Decimal(50_000))
    assert top.return_pct == Decimal("4.5")
    assert top.max_drawdown_pct == Decimal(10)  # 110,000 -> 99,000
    assert (top.trades, top.fees_paid, dict(top.positions)) == (6, Decimal(60), {"BTC": Decimal("1.5")})
    assert summaries[idle].return_pct == 0
    # LLM usage totals: the five decisions' 900 + 80 tokens and $0.00012345 each; none for the others.
    assert (top.prompt_tokens, top.completion_tokens, top.llm_cost_usd) == (4500, 400, Decimal("0.00061725"))
    assert (summaries[idle].prompt_tokens, summaries[idle].llm_cost_usd) == (0, 0)
    assert (summaries[new].prompt_tokens, summaries[new].completion_tokens, summaries[new].llm_cost_usd) == (0, 0, 0)
    fresh = summaries[new]
    assert (fresh.equity, fresh.return_pct, fresh.max_drawdown_pct, fresh.cash, fresh.trades) == (
        None,
        None,
        None,
        START,
        0,
    )
    assert queries.agent_summary(trader, starting_cash=START) == top
    assert queries.agent_summary(999, starting_cash=START) is None


def test_trades_and_decisions_page_newest_first(queries: SqlAlchemyRaceQueries, race: tuple[int, int, int]) -> None:
    trader, idle, _ = race

    trades = queries.trades(trader, limit=3, offset=0)
    assert (trades.total, trades.limit, trades.offset) == (4, 3, 0)
    assert [t.cycle_time for t in trades.items] == [T0 + 3 * HOUR, T0 + 3 * HOUR, T0 + HOUR]
    assert trades.items[0].id > trades.items[1].id
    assert trades.items[0].price == Decimal("42000.5")
    assert [t.cycle_time for t in queries.trades(trader, limit=3, offset=3).items] == [T0 + HOUR]

    decisions = queries.decisions(trader, limit=2, offset=1)
    assert decisions.total == 5
    assert [d.cycle_time for d in decisions.items] == [T0 + 3 * HOUR, T0 + 2 * HOUR]
    latest = decisions.items[0]
    assert (latest.status, latest.trades, latest.confidence, latest.cost_usd) == ("ok", 2, 0.62, Decimal("0.00012345"))
    assert latest.orders[0] == {"symbol": "BTC", "side": "BUY", "quantity": "0.05", "notional_usd": None}
    assert latest.rejections[0]["reason"] == "unknown_symbol"
    assert queries.decisions(idle, limit=10, offset=0).total == 0


def test_equity_series_range_and_downsampling(
    uow_factory: SqlAlchemyUnitOfWorkFactory, queries: SqlAlchemyRaceQueries
) -> None:
    with uow_factory() as uow:
        agent_id = uow.agents.add(agent()).id
        snapshot = EquitySnapshot.first(agent_id, at=T0, equity=START, cash=START)
        uow.equity.add(snapshot)
        for minute in range(15, 15 * 1000, 15):
            equity = START + (minute % 600) - 300
            snapshot = snapshot.next(at=T0 + timedelta(minutes=minute), equity=equity, cash=START)
            uow.equity.add(snapshot)
        uow.commit()

    everything = queries.equity_series(agent_id, start=None, end=None, max_points=5000)
    assert len(everything) == 1000
    sampled = queries.equity_series(agent_id, start=None, end=None, max_points=100)
    assert 2 <= len(sampled) <= 100
    assert sampled[0] == everything[0]
    assert sampled[-1] == everything[-1]
    assert [p.at for p in sampled] == sorted({p.at for p in sampled})
    window = queries.equity_series(agent_id, start=T0 + HOUR, end=T0 + 2 * HOUR, max_points=100)
    assert [p.at for p in window] == [T0 + HOUR + timedelta(minutes=15 * i) for i in range(5)]
    assert all(p.drawdown_pct >= 0 for p in everything)


def test_latest_prices_candles_and_symbols(
    uow_factory: SqlAlchemyUnitOfWorkFactory, queries: SqlAlchemyRaceQueries
) -> None:
    with uow_factory() as uow:
        uow.assets.upsert(Asset("BTC", "Bitcoin", "bitcoin"))
        uow.assets.upsert(Asset("ETH", "Ethereum", "ethereum"))
        uow.assets.upsert(Asset("SOL", "Solana", "solana"))  # no candles yet
        uow.candles.upsert(hourly("BTC", 30) + hourly("ETH", 10, first_close=2000))
        uow.candles.upsert([candle("BTC", T0, 7, interval="1d")])  # closes at T0 + 24h, before the 1h data
        uow.commit()

    prices = {p.symbol: p for p in queries.latest_prices()}
    assert set(prices) == {"BTC", "ETH"}
    assert (prices["BTC"].price, prices["BTC"].as_of) == (Decimal(129), T0 + 30 * HOUR)
    assert (prices["ETH"].price, prices["ETH"].as_of) == (Decimal(2009), T0 + 10 * HOUR)

    latest = queries.candles("BTC", "1h", start=None, end=None, limit=5)
    assert [c.open_time for c in latest] == [T0 + i * HOUR for i in range(25, 30)]
    ranged = queries.candles("BTC", "1h", start=T0 + 2 * HOUR, end=T0 + 20 * HOUR, limit=3)
    assert ranged == hourly("BTC", 5)[2:5]
    assert queries.candles("BTC", "1h", start=None, end=T0 + HOUR, limit=10) == hourly("BTC", 2)
    assert queries.known_symbols() == {"BTC", "ETH", "SOL"}


def test_ping(queries: SqlAlchemyRaceQueries) -> None:
    queries.ping()


def test_race_status_counts_cycles_and_finds_the_newest_mark(
    queries: SqlAlchemyRaceQueries, uow_factory: SqlAlchemyUnitOfWorkFactory, race: tuple[int, int, int]
) -> None:
    """GET /api/race's query, on SQLite and PostgreSQL: the cycles' count and range, when the latest finished
    (times come back aware UTC from min/max on both), and the newest mark over every agent."""
    _, idle, _ = race
    with uow_factory() as uow:
        for hour in (2, 0, 1):  # recorded out of order: min and max, not insertion order
            at = T0 + hour * HOUR
            uow.cycles.add(CycleRecord(at, "ab" * 32, 3, 3, hour, at, at + timedelta(seconds=40 + hour)))
        uow.commit()

    status = queries.race_status()

    assert status == RaceStatus(
        cycles=3,
        first_cycle=T0,
        last_cycle=T0 + 2 * HOUR,
        last_finished_at=T0 + 2 * HOUR + timedelta(seconds=42),
        last_mark_at=T0 + 3 * HOUR,  # the trader's newest; the idle agent's only mark is at T0
    )
    assert status.last_cycle is not None
    assert status.last_cycle.utcoffset() == timedelta(0)
    with uow_factory() as uow:  # a later mark of another agent moves it
        uow.equity.add(
            EquitySnapshot.first(idle, at=T0, equity=START, cash=START).next(at=T0 + 5 * HOUR, equity=START, cash=START)
        )
        uow.commit()
    assert queries.race_status().last_mark_at == T0 + 5 * HOUR


def test_race_status_of_a_race_not_started(queries: SqlAlchemyRaceQueries) -> None:
    assert queries.race_status() == RaceStatus(0, None, None, None, None)
