"""CoinGecko OHLC rows -> candles: close-stamped rows become open-time candles, 30-minute halves become 1h
candles only when the hour is whole and closed, and nothing unsound, partial or late gets through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.adapters.market_data.coingecko_mapping import (
    FOUR_HOURS,
    THIRTY_MINUTES,
    CoinGeckoResponseError,
    OhlcRow,
    ParsedOhlc,
    detect_length,
    map_answer,
    parse_ohlc,
    parse_simple_price,
    source_for,
    to_candles,
)
from shared.domain.snapshot import MarketSnapshot
from tests.coingecko.standin import fixture

T0 = datetime(2024, 3, 10, tzinfo=UTC)
MS = 1000
HALF = 30 * 60 * MS
T0_MS = int(T0.timestamp()) * MS
HOUR = timedelta(hours=1)
HALF_HOUR = timedelta(minutes=30)


def row(close_ms: int, o: str = "100", h: str = "110", low: str = "90", c: str = "105") -> OhlcRow:
    return OhlcRow(close_ms, Decimal(o), Decimal(h), Decimal(low), Decimal(c))


def hourly(rows: list[OhlcRow], *, start: datetime = T0 - timedelta(days=1), end: datetime = T0 + timedelta(days=1)):  # type: ignore[no-untyped-def]
    return to_candles("BTC", rows, source="30m", interval="1h", start=start, end=end)


def test_the_recorded_ohlc_example_maps_close_stamps_to_open_times() -> None:
    rows = parse_ohlc(fixture("coins_bitcoin_ohlc.json"), endpoint="/coins/bitcoin/ohlc").rows
    mapped = to_candles(
        "BTC",
        rows,
        source="30m",
        interval="30m",
        start=datetime(2026, 5, 19, tzinfo=UTC),
        end=datetime(2026, 6, 1, tzinfo=UTC),
    )
    assert [c.open_time for c in mapped.candles] == [
        datetime(2026, 5, 19, 13, 30, tzinfo=UTC),  # stamped 14:00 = its close
        datetime(2026, 5, 19, 14, 0, tzinfo=UTC),
    ]
    first = mapped.candles[0]
    assert (first.open, first.high, first.low, first.close) == (
        Decimal(76769),
        Decimal(76889),
        Decimal(76744),
        Decimal(76818),
    )
    assert first.close_time == datetime(2026, 5, 19, 14, tzinfo=UTC)
    assert first.volume == 0
    assert mapped.dropped == []


def test_two_aligned_halves_make_one_hour_candle() -> None:
    rows = [row(T0_MS + HALF, "100", "120", "95", "110"), row(T0_MS + 2 * HALF, "110", "115", "80", "90")]
    mapped = hourly(rows)
    [candle] = mapped.candles
    assert (candle.interval, candle.open_time, candle.close_time) == ("1h", T0, T0 + timedelta(hours=1))
    assert (candle.open, candle.high, candle.low, candle.close) == (
        Decimal(100),
        Decimal(120),
        Decimal(80),
        Decimal(90),
    )


def test_an_hour_with_one_half_missing_is_not_emitted_and_says_why() -> None:
    rows = [row(T0_MS + 2 * HALF), row(T0_MS + 3 * HALF), row(T0_MS + 4 * HALF)]  # 00:00-00:30 is missing
    mapped = hourly(rows)
    assert [c.open_time for c in mapped.candles] == [T0 + timedelta(hours=1)]
    assert mapped.dropped == [(T0.isoformat(), "only 1 of its 2 30m candles (missing or not published yet)")]


def test_an_hour_still_forming_is_left_for_the_next_run_without_look_ahead() -> None:
    now = T0 + timedelta(minutes=45)
    rows = [row(T0_MS + HALF), row(T0_MS + 2 * HALF)]  # the second half closes at 01:00, after `now`
    mapped = hourly(rows, end=now)
    assert mapped.candles == []
    assert mapped.dropped == []  # not a problem: the next run stores it closed
    # and what is emitted never trips the snapshot's anti-look-ahead rule
    complete = hourly([row(T0_MS + HALF), row(T0_MS + 2 * HALF)], end=T0 + timedelta(hours=1))
    MarketSnapshot.build(T0 + timedelta(hours=1), {"BTC": complete.candles})


def test_unsound_rows_are_dropped_with_their_reason_and_spoil_their_hour() -> None:
    rows = [
        row(T0_MS + HALF, o="100", h="99", c="98"),  # high below open
        row(T0_MS + 2 * HALF),
        row(T0_MS + 3 * HALF, o="0"),
        row(T0_MS + 4 * HALF),
        row(T0_MS + 5 * HALF, c="NaN"),
        row(T0_MS + 6 * HALF),
        row(T0_MS + 7 * HALF, low="106"),  # low above min(open, close)
        row(T0_MS + 8 * HALF),
    ]
    mapped = hourly(rows)
    assert mapped.candles == []
    reasons = [reason for _, reason in mapped.dropped]
    assert reasons[:4] == [
        "high below max(open, close)",
        "zero or negative price",
        "non-finite value",
        "low above min(open, close)",
    ]


def test_duplicates_and_out_of_order_rows() -> None:
    same = [row(T0_MS + HALF), row(T0_MS + HALF), row(T0_MS + 2 * HALF)]
    assert len(hourly(same).candles) == 1
    assert hourly(same).dropped == []

    conflicting = [row(T0_MS + HALF), row(T0_MS + HALF, c="104"), row(T0_MS + 2 * HALF)]
    mapped = hourly(conflicting)
    assert mapped.candles == []  # two answers for one half hour: neither is trusted
    assert ("2024-03-10T00:00:00+00:00", "duplicate timestamp with different prices") in mapped.dropped

    backwards = [row(T0_MS + 2 * HALF), row(T0_MS + HALF), row(T0_MS + 4 * HALF), row(T0_MS + 3 * HALF)]
    mapped = hourly(backwards)
    assert mapped.candles == []
    assert [r for _, r in mapped.dropped].count("out of order") == 2


def test_rows_off_the_half_hour_grid_are_dropped() -> None:
    mapped = hourly([row(T0_MS + HALF + 60 * MS), row(T0_MS + 2 * HALF)])
    assert mapped.candles == []
    assert mapped.dropped[0][1] == "close time not on a 30m boundary"


def test_window_bounds_are_kept() -> None:
    rows = [row(T0_MS + i * HALF) for i in range(1, 9)]  # 00:00 .. 04:00
    mapped = hourly(rows, start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=3))
    assert [c.open_time.hour for c in mapped.candles] == [1, 2]


def test_a_day_is_built_from_six_four_hour_candles() -> None:
    four_h = 8 * HALF
    rows = [row(T0_MS + i * four_h, o="100", h=str(110 + i), low=str(90 - i), c="105") for i in range(1, 7)]
    mapped = to_candles("BTC", rows, source="4h", interval="1d", start=T0, end=T0 + timedelta(days=2))
    [day] = mapped.candles
    assert (day.open_time, day.interval, day.high, day.low) == (T0, "1d", Decimal(116), Decimal(84))


def test_days_asked_for_keep_the_granularity() -> None:
    assert source_for("1h") is THIRTY_MINUTES
    assert source_for("1d") is FOUR_HOURS
    assert THIRTY_MINUTES.days_for(T0 - timedelta(hours=1), T0) == 1
    assert THIRTY_MINUTES.days_for(T0 - timedelta(hours=30), T0) == 2
    assert THIRTY_MINUTES.days_for(T0 - timedelta(days=9), T0) == 2  # older 30m data is out of reach
    assert FOUR_HOURS.days_for(T0 - timedelta(hours=1), T0) == 3
    assert FOUR_HOURS.days_for(T0 - timedelta(days=12, hours=1), T0) == 13
    assert FOUR_HOURS.days_for(T0 - timedelta(days=90), T0) == 30
    with pytest.raises(ValueError, match="cannot serve"):
        source_for("15m")


def test_a_body_that_is_not_an_array_names_the_endpoint() -> None:
    for body, message in (({"error": "coin not found"}, "expected a JSON array"), (None, "got null")):
        with pytest.raises(CoinGeckoResponseError, match=message) as caught:
            parse_ohlc(body, endpoint="/coins/bitcoin/ohlc")
        assert str(caught.value).startswith("/coins/bitcoin/ohlc: ")


def test_bad_rows_are_rejected_one_by_one_with_their_reason_and_the_good_ones_kept() -> None:
    good = [T0_MS, Decimal(1), Decimal(2), Decimal("0.5"), Decimal(1)]
    body = [
        good,
        [1, 2, 3, 4],
        [T0_MS + HALF, None, 2, 1, 1],
        [True, 1, 2, 1, 1],
        [Decimal("1.5"), 1, 2, 1, 1],
        "oops",
        [T0_MS + 2 * HALF, "abc", "2", "1", "1"],
        [str(T0_MS + 3 * HALF), " 100.5", "110", "90.25", "1e2"],  # decimal strings are numbers
    ]
    parsed = parse_ohlc(body, endpoint="/coins/bitcoin/ohlc")
    assert parsed.rows == [
        OhlcRow(T0_MS, Decimal(1), Decimal(2), Decimal("0.5"), Decimal(1)),
        OhlcRow(T0_MS + 3 * HALF, Decimal("100.5"), Decimal(110), Decimal("90.25"), Decimal(100)),
    ]
    assert parsed.rejected == [
        ("row 1", "row 1 is not [time, open, high, low, close]: an array of 4"),
        ("closing 2024-03-10T00:30:00+00:00", "closing 2024-03-10T00:30:00+00:00 has a non-numeric price"),
        ("row 3", "row 3 has a non-integer timestamp 'True'"),
        ("row 4", "row 4 has a non-integer timestamp '1.5'"),
        ("row 5", "row 5 is not [time, open, high, low, close]: a string"),
        ("closing 2024-03-10T01:00:00+00:00", "closing 2024-03-10T01:00:00+00:00 has a non-numeric price"),
    ]


def test_a_nan_string_is_one_dropped_candle_not_a_rejected_answer() -> None:
    rows = [row(T0_MS + i * HALF) for i in range(1, 5)]
    body = [[r.close_ms, str(r.open), str(r.high), str(r.low), str(r.close)] for r in rows]
    body[0][4] = "NaN"
    mapped = map_answer(
        "BTC", parse_ohlc(body, endpoint="/ohlc"), expected="30m", interval="30m", start=T0, end=T0 + 2 * HOUR
    )
    assert [c.open_time for c in mapped.candles] == [T0 + i * HALF_HOUR for i in (1, 2, 3)]
    assert mapped.dropped == [("2024-03-10T00:00:00+00:00", "non-finite value")]
    assert mapped.problem is None


@pytest.mark.parametrize(
    ("spacing", "interval", "count"),
    [
        # the race's interval, and each CoinGecko length it can be built from (8 hours of rows)
        ("30m", "30m", 16),
        ("30m", "1h", 8),
        ("1h", "1h", 8),
        ("30m", "4h", 2),
        ("1h", "4h", 2),
        ("4h", "4h", 2),
    ],
)
def test_the_candle_length_is_read_from_the_row_spacing(spacing: str, interval: str, count: int) -> None:
    step = {"30m": HALF, "1h": 2 * HALF, "4h": 8 * HALF}[spacing]
    rows = [row(T0_MS + step * i) for i in range(1, 8 * 2 * HALF // step + 1)]
    assert detect_length(rows) == spacing
    expected = "4h" if interval == "4h" else "30m"  # what `days` would give on the public plan
    mapped = map_answer("BTC", ParsedOhlc(rows, []), expected=expected, interval=interval, start=T0, end=T0 + 8 * HOUR)
    assert len(mapped.candles) == count
    assert (mapped.source, mapped.problem, mapped.dropped) == (spacing, None, [])


def test_a_length_the_interval_cannot_be_built_from_is_a_problem_with_every_row_listed() -> None:
    rows = [row(T0_MS + 8 * HALF * i) for i in range(1, 4)]  # 4-hour rows for a 1h race
    mapped = map_answer("BTC", ParsedOhlc(rows, []), expected="30m", interval="1h", start=T0, end=T0 + 12 * HOUR)
    assert mapped.candles == []
    assert mapped.problem == "no usable 1h candle for BTC: CoinGecko answered 4h candles (3 rows)"
    assert [reason for _, reason in mapped.dropped] == ["4h candles cannot make 1h candles"] * 3


def test_a_gap_does_not_change_the_detected_length_and_too_few_rows_fall_back_to_the_expected_one() -> None:
    rows = [row(T0_MS + 2 * HALF * i) for i in (1, 2, 3, 6, 7)]
    assert detect_length(rows) == "1h"
    assert detect_length(rows[:1]) is None
    single = map_answer("BTC", ParsedOhlc(rows[:1], []), expected="30m", interval="1h", start=T0, end=T0 + HOUR)
    assert single.source == "30m"


def test_an_answer_only_late_with_the_newest_candle_is_no_problem_but_a_stale_one_is() -> None:
    late = [row(T0_MS + HALF)]  # the first half of the hour closing at T0+1h; the second not published yet
    mapped = map_answer("BTC", ParsedOhlc(late, []), expected="30m", interval="1h", start=T0, end=T0 + HOUR)
    assert (mapped.candles, mapped.problem) == ([], None)
    stale = map_answer("BTC", ParsedOhlc(late, []), expected="30m", interval="1h", start=T0, end=T0 + 5 * HOUR)
    assert stale.problem is not None
    assert "more than 1h before" in stale.problem
    assert "answered no rows" in str(
        map_answer("BTC", ParsedOhlc([], []), expected="30m", interval="1h", start=T0, end=T0 + HOUR).problem
    )


def test_simple_price_recorded_example_and_wrong_shapes() -> None:
    body = fixture("simple_price.json")
    prices = parse_simple_price(body, endpoint="/simple/price", ids=["bitcoin", "unknown-coin"])
    assert prices == {"bitcoin": (Decimal(76975), datetime.fromtimestamp(1779092258, UTC))}
    with pytest.raises(CoinGeckoResponseError, match="/simple/price: 'bitcoin' has no numeric 'usd'"):
        parse_simple_price({"bitcoin": {"eur": 1}}, endpoint="/simple/price", ids=["bitcoin"])
    with pytest.raises(CoinGeckoResponseError, match="expected a JSON object"):
        parse_simple_price([], endpoint="/simple/price", ids=["bitcoin"])
