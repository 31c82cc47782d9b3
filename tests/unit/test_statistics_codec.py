"""The statistics' stored JSON form: lossless both ways, JSON-safe, and loud about a payload that does not fit."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from decimal import Decimal

import pytest

from shared.adapters.db.statistics_codec import StatisticsCodecError, decode, encode
from shared.domain.statistics import AgentStatistics, TradeStats
from tests.statistics_fakes import sample_statistics


def test_statistics_survive_the_round_trip_through_strict_json_exactly() -> None:
    original = sample_statistics(3, controls={1: "Buy & Hold BTC", 6: "Equal-Weight Buy & Hold"})
    text = json.dumps(encode(original), allow_nan=False)  # what PostgreSQL's JSON type accepts

    restored = decode(AgentStatistics, json.loads(text))

    assert restored == original
    assert restored.trades.average_loss == Decimal("-553.12500000")  # every digit, as a string on the way
    assert json.loads(text)["max_drawdown_duration"] == 113 * 3600  # durations as seconds


def test_missing_figures_and_non_finite_floats_are_kept() -> None:
    trades = replace(sample_statistics(1).trades, win_rate=None, profit_factor=math.inf, average_holding=None)
    original = replace(sample_statistics(1), sharpe=None, turnover=-math.inf, trades=trades)
    encoded = encode(original)
    json.dumps(encoded, allow_nan=False)

    restored = decode(AgentStatistics, encoded)

    assert restored.sharpe is None
    assert restored.trades.profit_factor == math.inf
    assert restored.turnover == -math.inf
    assert restored.trades.average_holding is None
    nan = decode(AgentStatistics, encode(replace(original, calmar=math.nan)))
    assert nan.calmar is not None
    assert math.isnan(nan.calmar)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("trades", "round_trips"), "14", "trades.round_trips: expected int"),
        (("trades", "average_win"), 812.4, "expected a decimal string"),
        (("max_drawdown",), None, "max_drawdown: null"),
        (("versus_controls",), {"a": 1}, "expected a list"),
        (("sharpe",), True, "sharpe: expected a number"),
    ],
)
def test_a_payload_that_does_not_fit_the_types_is_refused_with_where(
    path: tuple[str, ...], value: object, message: str
) -> None:
    payload = encode(sample_statistics(1))
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(StatisticsCodecError, match=message):
        decode(AgentStatistics, payload)


def test_a_payload_missing_a_required_field_is_refused() -> None:
    payload = encode(sample_statistics(1).trades)
    del payload["round_trips"]
    with pytest.raises(StatisticsCodecError, match="round_trips"):
        decode(TradeStats, payload)


def test_only_known_types_are_encoded() -> None:
    with pytest.raises(TypeError, match="cannot encode object"):
        encode(object())
