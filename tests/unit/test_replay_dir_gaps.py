"""A cycle during a gap in the data never trades the missing symbol at its stale close (timer path and backtest
alike), on the real December 2020 candles; an exchange-wide gap is the documented outage rule."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from shared.adapters.market_data.replay_dir import DirectoryReplayProvider
from shared.domain.model import AgentDecision, Asset, Order, RejectionReason, Side
from shared.domain.rules import RaceRules
from shared.services.backtest import run_backtest
from shared.services.cycle import run_cycle
from shared.services.ingest import ingest_market_data
from shared.services.ports import AgentContext, DecisionRecord
from tests.fakes import FakeClientFactory, FakeState, FakeUnitOfWorkFactory

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "replay_dir"
HOUR = timedelta(hours=1)
SYMBOLS = ("BTC", "ETH", "SOL")


class BuysEverything:
    """Buys 1,000 USD of every asset in its snapshot, every cycle."""

    async def decide(self, context: AgentContext) -> AgentDecision:
        orders = tuple(Order(s, Side.BUY, notional_usd=Decimal(1000)) for s in sorted(context.snapshot.candles))
        return AgentDecision(orders, "buy all", 0.5)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.fixture
def sol_gap_dir(tmp_path: Path) -> Path:
    """The real files, with SOL's 2020-12-23 10:00-12:00 candles removed: a gap in one symbol only."""
    shutil.copy(FIXTURE / "BTC_1h.csv", tmp_path)
    shutil.copy(FIXTURE / "ETH_1h.csv.gz", tmp_path)
    gone = {str(int(utc(2020, 12, 23, hour).timestamp())) for hour in (10, 11, 12)}
    lines = (FIXTURE / "SOL_1h.csv").read_text().splitlines(keepends=True)
    (tmp_path / "SOL_1h.csv").write_text("".join(line for line in lines if line.split(",")[0] not in gone))
    return tmp_path


def race(directory: Path) -> tuple[FakeUnitOfWorkFactory, FakeClientFactory, DirectoryReplayProvider]:
    uow = FakeUnitOfWorkFactory(FakeState())
    uow.add_assets(*(Asset(s, s, s.lower()) for s in SYMBOLS))
    buyer = uow.add_agent("buyer")
    return uow, FakeClientFactory({buyer.id: BuysEverything()}), DirectoryReplayProvider(directory)


def decision(uow: FakeUnitOfWorkFactory, at: datetime) -> DecisionRecord:
    return uow.state.decisions[(1, at)]


def traded(record: DecisionRecord) -> list[str]:
    return sorted(trade.symbol for trade in record.trades)


def stale_rejections(record: DecisionRecord) -> list[str]:
    return [r.order.symbol for r in record.rejections if r.reason is RejectionReason.NO_PRICE and r.order]


def run_timer_cycles(
    uow: FakeUnitOfWorkFactory,
    clients: FakeClientFactory,
    provider: object,
    times: list[datetime],
    rules: RaceRules | None = None,
) -> None:
    for at in times:
        ingest_market_data(uow_factory=uow, provider=provider, now=at, interval="1h", backfill=72 * HOUR)  # type: ignore[arg-type]
        asyncio.run(
            run_cycle(
                uow_factory=uow,
                clients=clients,
                cycle_time=at,
                rules=rules or RaceRules(),
                interval="1h",
                snapshot_candles=24,
                agent_timeout_s=5,
                max_concurrency=4,
            )
        )


def test_a_gap_in_one_symbol_is_not_traded_at_its_stale_close(sol_gap_dir: Path) -> None:
    uow, clients, provider = race(sol_gap_dir)
    times = [utc(2020, 12, 23, hour) for hour in range(9, 16)]
    run_timer_cycles(uow, clients, provider, times)
    # The cycle at 11:00 sees SOL's last candle close at 10:00 (opened 09:00), the others' at 11:00.
    for hour in (11, 12, 13):
        record = decision(uow, utc(2020, 12, 23, hour))
        assert traded(record) == ["BTC", "ETH"], hour
        assert stale_rejections(record) == ["SOL"]
        assert "no fresh price for SOL: its latest candle closed at 2020-12-23 10:00 UTC" in record.rejections[0].detail
    for hour in (10, 14, 15):  # before the gap and once SOL's 13:00 candle has closed: every asset trades
        assert traded(decision(uow, utc(2020, 12, 23, hour))) == list(SYMBOLS), hour


def test_the_backtest_applies_the_same_rule(sol_gap_dir: Path) -> None:
    uow, clients, provider = race(sol_gap_dir)
    report = asyncio.run(
        run_backtest(
            uow_factory=uow,
            provider=provider,
            clients=clients,
            start=utc(2020, 12, 23, 9),
            end=utc(2020, 12, 23, 16),
            cycle=HOUR,
            rules=RaceRules(),
            interval="1h",
            snapshot_candles=24,
            backfill=72 * HOUR,
            agent_timeout_s=5,
            max_concurrency=4,
        )
    )
    assert report.cycles == 7
    assert report.rejections == 3
    assert [stale_rejections(decision(uow, utc(2020, 12, 23, h))) for h in range(9, 16)] == [
        [],
        [],
        ["SOL"],
        ["SOL"],
        ["SOL"],
        [],
        [],
    ]


def test_an_exchange_wide_gap_decides_on_the_last_good_snapshot_and_records_its_staleness() -> None:
    # Binance traded nothing from 2020-12-21 15:00 to 17:59: every symbol is equally behind, as in a provider
    # outage; the documented rule (README) is to decide on the last good snapshot, recording how stale it was.
    uow, clients, provider = race(FIXTURE)
    times = [utc(2020, 12, 21, hour) for hour in range(15, 20)]
    run_timer_cycles(uow, clients, provider, times)
    staleness = [decision(uow, at).data_staleness_seconds for at in times]
    assert staleness == [0, 3600, 7200, 3600 * 3, 0]
    assert all(stale_rejections(decision(uow, at)) == [] for at in times)


def test_with_a_price_age_limit_an_exchange_wide_halt_is_not_traded_either() -> None:
    uow, clients, provider = race(FIXTURE)
    times = [utc(2020, 12, 21, hour) for hour in range(15, 20)]
    run_timer_cycles(uow, clients, provider, times, RaceRules(max_price_age=HOUR))  # Race__MaxPriceAgeMinutes=60
    # 16:00 sees closes of 15:00 (one hour old: allowed); 17:00 and 18:00 see them two and three hours old.
    assert [stale_rejections(decision(uow, at)) for at in times] == [[], [], list(SYMBOLS), list(SYMBOLS), []]
    assert (
        "more than 60 min before the cycle (Race__MaxPriceAgeMinutes)" in decision(uow, times[2]).rejections[0].detail
    )
    assert traded(decision(uow, times[4])) == list(SYMBOLS)


def test_the_price_age_limit_is_a_setting() -> None:
    from shared.config import RaceSettings

    assert RaceSettings().rules().max_price_age is None
    assert RaceSettings(MaxPriceAgeMinutes=90).rules().max_price_age == timedelta(minutes=90)
    with pytest.raises(ValueError, match="max price age must be positive"):
        RaceRules(max_price_age=timedelta(0))
