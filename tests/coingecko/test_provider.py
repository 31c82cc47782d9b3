"""The CoinGecko provider through the ingest service: live candles are the same kind of thing as replayed
ones, gaps and duplicates and bad prices are handled, and the provider is chosen and configured by settings."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.adapters.market_data.coingecko import CoinGeckoMarketDataProvider
from shared.adapters.market_data.factory import MarketDataProviderUnavailable, make_market_data_provider
from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.config import COINGECKO_PRO_URL, COINGECKO_PUBLIC_URL, CoinGeckoSettings, MarketDataSettings, Settings
from shared.services.ingest import ingest_market_data
from shared.services.seed import DEFAULT_ASSETS
from tests.coingecko.helpers import FakeTime, make_provider
from tests.coingecko.standin import HALF_HOUR_MS, CoinGeckoStandIn, Row
from tests.fakes import FakeUnitOfWorkFactory

HOUR = timedelta(hours=1)


def ingest(uow: FakeUnitOfWorkFactory, provider: Any, standin: CoinGeckoStandIn, backfill: timedelta = 20 * HOUR):  # type: ignore[no-untyped-def]
    return ingest_market_data(uow_factory=uow, provider=provider, now=standin.now, interval="1h", backfill=backfill)


def seeded_uow() -> FakeUnitOfWorkFactory:
    uow = FakeUnitOfWorkFactory()
    uow.add_assets(*DEFAULT_ASSETS)
    return uow


def test_live_hourly_candles_equal_the_replayed_ones(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    standin.now += timedelta(minutes=20)  # mid-hour: the current hour is still forming
    start, end = standin.now - 20 * HOUR, standin.now
    live = make_provider(standin, fake_time).fetch_candles(DEFAULT_ASSETS, start=start, end=end)
    replay = ReplayMarketDataProvider().fetch_candles(DEFAULT_ASSETS, start=start, end=end)
    assert len(live) == len(replay) == 5 * 19  # 20 hours back from 00:20 -> 19 whole hours have closed
    assert [(c.symbol, c.interval, c.open_time, c.open, c.high, c.low, c.close) for c in live] == [
        (c.symbol, c.interval, c.open_time, c.open, c.high, c.low, c.close) for c in replay
    ]
    assert {c.volume for c in live} == {Decimal(0)}  # OHLC has no volume
    assert max(c.close_time for c in live) <= end
    assert len(standin.requests) == 5  # one call per asset


def test_a_day_of_five_assets_costs_five_calls_then_nothing_until_an_hour_closes(
    standin: CoinGeckoStandIn, fake_time: FakeTime
) -> None:
    uow, provider = seeded_uow(), make_provider(standin, fake_time)
    report = ingest(uow, provider, standin, backfill=24 * HOUR)
    assert report.stored == 5 * 24
    assert report.errors == {}
    assert report.dropped == ()
    assert {r["query"]["days"][0] for r in standin.requests} == {"1"}
    assert len(standin.requests) == 5
    standin.now += timedelta(minutes=15)
    assert ingest(uow, provider, standin).stored == 0
    assert len(standin.requests) == 5  # the next hour has not closed: no call at all
    standin.now += timedelta(minutes=45)
    assert ingest(uow, provider, standin).stored == 5
    assert len(standin.requests) == 10


def test_a_backfill_over_a_day_asks_for_two_days(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    report = ingest(seeded_uow(), make_provider(standin, fake_time), standin, backfill=40 * HOUR)
    assert report.stored == 5 * 40
    assert {r["query"]["days"][0] for r in standin.requests} == {"2"}


def _drop_half(close_ms: int):  # type: ignore[no-untyped-def]
    return lambda rows: [r for r in rows if r[0] != close_ms]


def test_a_missing_half_hour_is_a_recorded_gap_and_bad_rows_are_never_stored(
    standin: CoinGeckoStandIn, fake_time: FakeTime
) -> None:
    now_ms = int(standin.now.timestamp() * 1000)
    hole = now_ms - 10 * HALF_HOUR_MS  # a half of the hour 5 hours back

    def damage(rows: list[Row]) -> list[Row]:
        rows = [r for r in rows if r[0] != hole]
        at = next(i for i, r in enumerate(rows) if r[0] == now_ms - 4 * HALF_HOUR_MS)
        rows.insert(at, list(rows[at]))  # an identical duplicate: harmless
        rows[at + 1] = [rows[at][0], rows[at][1], Decimal("-1"), rows[at][3], rows[at][4]]  # and a conflicting one
        bad = list(rows[-4])
        bad[2] = Decimal("0.5")  # high below open and close: the whole hour is refused
        rows[-4] = bad
        return rows

    standin.edit_rows("bitcoin", damage)
    uow = seeded_uow()
    report = ingest(uow, make_provider(standin, fake_time), standin, backfill=12 * HOUR)
    stored = uow.state.candles[("BTC", "1h")]
    assert len(stored) == 12 - 3  # 18:00 (a half missing), 21:00 (conflicting duplicate), 22:00 (bad high)
    assert all(c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) for c in stored.values())
    assert report.gaps == (
        ("BTC", "2024-03-09T18:00:00+00:00", "2024-03-09T18:00:00+00:00"),
        ("BTC", "2024-03-09T21:00:00+00:00", "2024-03-09T22:00:00+00:00"),
    )
    assert all(len(uow.state.candles[(s, "1h")]) == 12 for s in ("ETH", "SOL", "XRP", "BNB"))
    assert report.errors == {}


def test_the_factory_picks_the_provider_named_by_the_setting(standin: CoinGeckoStandIn) -> None:
    coingecko = make_market_data_provider(
        Settings(
            market_data=MarketDataSettings(Provider="coingecko"), coingecko=CoinGeckoSettings(BaseUrl=standin.base_url)
        )
    )
    assert isinstance(coingecko, CoinGeckoMarketDataProvider)
    assert coingecko.name == "coingecko"
    assert coingecko.config.base_url == standin.base_url
    assert isinstance(make_market_data_provider(Settings()), ReplayMarketDataProvider)
    unservable = MarketDataSettings.model_construct(provider="coingecko", interval="15m")
    with pytest.raises(MarketDataProviderUnavailable, match="coingecko cannot serve MarketData__Interval='15m'"):
        make_market_data_provider(Settings().model_copy(update={"market_data": unservable}))


def test_provider_defaults_to_coingecko_in_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MarketDataSettings().provider == "replay"
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "abc123")
    assert MarketDataSettings().provider == "coingecko"
    monkeypatch.setenv("MarketData__Provider", "replay")
    assert Settings().market_data.provider == "replay"


def test_plan_base_url_and_key_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    keyless = CoinGeckoSettings()
    assert (keyless.resolved_plan, keyless.resolved_base_url, keyless.calls_per_minute) == (
        "keyless",
        COINGECKO_PUBLIC_URL,
        30,
    )
    demo = CoinGeckoSettings(ApiKey="CG-abc")
    assert (demo.resolved_plan, demo.resolved_base_url) == ("demo", COINGECKO_PUBLIC_URL)
    pro = CoinGeckoSettings(ApiKey="CG-abc", Plan="pro")
    assert (pro.resolved_plan, pro.resolved_base_url) == ("pro", COINGECKO_PRO_URL)
    inferred = CoinGeckoSettings(ApiKey="CG-abc", BaseUrl=COINGECKO_PRO_URL + "/")
    assert inferred.resolved_plan == "pro"
    assert inferred.resolved_base_url == COINGECKO_PRO_URL
    monkeypatch.setenv("CoinGecko__ApiKey", "CG-fromEnv")
    monkeypatch.setenv("CoinGecko__Ids", "btc=bitcoin, XRP = ripple")
    settings = Settings()
    assert settings.coingecko.api_key is not None
    assert settings.coingecko.api_key.get_secret_value() == "CG-fromEnv"
    assert settings.coingecko.id_overrides == {"BTC": "bitcoin", "XRP": "ripple"}
    assert "CG-fromEnv" not in repr(settings)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ApiKey": "<your-coingecko-key>"}, "CoinGecko__ApiKey is still a placeholder"),
        ({"Plan": "demo"}, "CoinGecko__Plan=demo needs CoinGecko__ApiKey"),
        ({"BaseUrl": "api.coingecko.com"}, "CoinGecko__BaseUrl must be an http"),
        ({"Ids": "BTC"}, "CoinGecko__Ids: expected SYMBOL=coingecko-id"),
        ({"CallsPerMinute": 0}, "CallsPerMinute"),
    ],
)
def test_bad_settings_fail_fast_naming_the_setting(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CoinGeckoSettings(**values)


def test_id_overrides_replace_the_seeded_id(standin: CoinGeckoStandIn, fake_time: FakeTime) -> None:
    provider = make_provider(standin, fake_time, Ids="BTC=bitcoin-renamed")
    assert provider.coin_id(DEFAULT_ASSETS[0]) == "bitcoin-renamed"
    assert provider.coin_id(DEFAULT_ASSETS[1]) == "ethereum"
