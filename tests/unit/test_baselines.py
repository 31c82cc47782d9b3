"""Baseline agents: each strategy's behaviour, determinism, and orders that fit the rules."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.adapters.agents.baselines import (
    AlwaysHold,
    BuyAndHold,
    MeanReversion,
    Momentum,
    ParamError,
    RandomTrader,
    UnknownStrategyError,
    build_baseline,
)
from shared.domain.model import Agent, AgentDecision, Portfolio, Position, Side
from shared.domain.rules import RaceRules, execute_orders
from shared.domain.snapshot import MarketSnapshot
from shared.services.ports import AgentContext
from tests.fakes import T0, candle_series

HOUR = timedelta(hours=1)
D = Decimal
RULES = RaceRules()


def context(
    closes: Mapping[str, Sequence[int | str]],
    portfolio: Portfolio | None = None,
    *,
    agent_id: int = 1,
    rules: RaceRules = RULES,
    cycle_offset: int = 0,
) -> AgentContext:
    candles = {s: candle_series(s, c) for s, c in closes.items()}
    length = max((len(c) for c in closes.values()), default=0)
    at = T0 + (length + cycle_offset) * HOUR
    snapshot = MarketSnapshot.build(at, candles)
    agent = Agent(agent_id, "test", "baseline", "test")
    return AgentContext(agent, at, snapshot, portfolio or Portfolio(agent_id, rules.starting_cash), rules)


def decide(client: Any, ctx: AgentContext) -> AgentDecision:
    decision = asyncio.run(client.decide(ctx))
    assert isinstance(decision, AgentDecision)
    assert decision.reasoning
    assert decision.confidence is None or 0 <= decision.confidence <= 1
    return decision


def executes_cleanly(ctx: AgentContext, decision: AgentDecision) -> Portfolio:
    result = execute_orders(ctx.portfolio, decision.orders, ctx.snapshot.last_prices, ctx.rules)
    assert result.rejections == (), result.rejections
    return result.portfolio


def test_always_hold_never_trades() -> None:
    decision = decide(AlwaysHold(), context({"BTC": [1, 2, 3]}))
    assert decision.orders == ()
    assert decision.hold_reason is None  # a chosen hold, not a failure


def test_buy_and_hold_spends_all_cash_once_then_holds() -> None:
    ctx = context({"BTC": [50_000, 51_000], "ETH": [2_000, 2_100]})
    first = decide(BuyAndHold(), ctx)
    (order,) = first.orders
    assert (order.symbol, order.side) == ("BTC", Side.BUY)
    after = executes_cleanly(ctx, first)
    assert after.cash < D(1)  # everything invested, fee included
    assert after.cash >= 0

    later = decide(BuyAndHold(), context({"BTC": [50_000, 40_000]}, after))
    assert later.orders == ()


def test_buy_and_hold_waits_for_its_symbol_and_respects_the_position_cap() -> None:
    assert decide(BuyAndHold(symbol="SOL"), context({"BTC": [1, 2]})).orders == ()
    capped = RaceRules(max_position_fraction=D("0.5"))
    ctx = context({"BTC": [50_000, 51_000]}, rules=capped)
    after = executes_cleanly(ctx, decide(BuyAndHold(), ctx))
    assert after.cash > D(49_000)


def test_momentum_buys_the_strongest_risers_equally_and_sells_fallers() -> None:
    closes = {"BTC": [100, 110, 120], "ETH": [100, 105, 108], "SOL": [100, 101, 130], "XRP": [100, 90, 80]}
    portfolio = Portfolio(1, D(10_000), {"XRP": Position(D(100), D(100))})
    ctx = context(closes, portfolio)
    decision = decide(Momentum(lookback=2, top_n=2), ctx)
    sells = [o for o in decision.orders if o.side is Side.SELL]
    buys = [o for o in decision.orders if o.side is Side.BUY]
    assert [(o.symbol, o.quantity) for o in sells] == [("XRP", D(100))]
    assert [o.symbol for o in buys] == ["SOL", "BTC"]  # +30% and +20%; ETH (+8%) is third
    assert buys[0].notional_usd == buys[1].notional_usd  # equal weight, sale proceeds included
    after = executes_cleanly(ctx, decision)
    assert after.cash < D(1)
    assert "momentum" in decision.reasoning


def test_momentum_keeps_leaders_it_already_holds_and_waits_for_history() -> None:
    held = Portfolio(1, D(0), {"BTC": Position(D(1), D(100))})
    assert decide(Momentum(lookback=2), context({"BTC": [100, 110, 120]}, held)).orders == ()
    assert decide(Momentum(lookback=24), context({"BTC": [100, 110, 120]})).orders == ()


def test_mean_reversion_buys_oversold_and_sells_overbought() -> None:
    flat = ["100"] * 23
    closes = {"BTC": [*flat, "80"], "ETH": [*flat, "125"], "SOL": [*flat, "100.5"]}
    portfolio = Portfolio(1, D(100_000), {"ETH": Position(D(10), D(100))})
    ctx = context(closes, portfolio)
    decision = decide(MeanReversion(window=24), ctx)
    assert [(o.side, o.symbol) for o in decision.orders] == [(Side.SELL, "ETH"), (Side.BUY, "BTC")]
    buy = decision.orders[1]
    assert buy.notional_usd is not None
    assert buy.notional_usd <= D("0.25") * ctx.portfolio.equity(ctx.snapshot.last_prices)
    executes_cleanly(ctx, decision)


def test_mean_reversion_ignores_flat_series() -> None:
    decision = decide(MeanReversion(window=3), context({"BTC": [100, 100, 100]}))
    assert decision.orders == ()


def test_random_trader_is_deterministic_per_agent_and_cycle() -> None:
    closes = {"BTC": [100, 101], "ETH": [10, 11]}
    trader = RandomTrader(seed=7, trade_probability=D(1))
    a = [decide(trader, context(closes, cycle_offset=i)).orders for i in range(20)]
    b = [
        decide(RandomTrader(seed=7, trade_probability=D(1)), context(closes, cycle_offset=i)).orders for i in range(20)
    ]
    assert a == b
    assert len({o for orders in a for o in orders}) > 1  # varies across cycles
    other_seed = [
        decide(RandomTrader(seed=8, trade_probability=D(1)), context(closes, cycle_offset=i)).orders for i in range(20)
    ]
    assert other_seed != a
    other_agent = [decide(trader, context(closes, agent_id=2, cycle_offset=i)).orders for i in range(20)]
    assert other_agent != a


def test_random_trader_orders_always_fit_the_rules() -> None:
    closes = {"BTC": [50_000, 50_100], "ETH": [2_000, 2_010]}
    portfolio = Portfolio(1, RULES.starting_cash)
    for i in range(200):
        ctx = context(closes, portfolio, cycle_offset=i)
        portfolio = executes_cleanly(ctx, decide(RandomTrader(trade_probability=D("0.8")), ctx))
    assert portfolio.trade_count > 50
    assert portfolio.cash >= 0


def test_random_trader_with_zero_probability_holds() -> None:
    assert decide(RandomTrader(trade_probability=D(0)), context({"BTC": [1, 2]})).orders == ()


def test_build_baseline_reads_params_and_rejects_bad_ones() -> None:
    agent = Agent(1, "m", "baseline", "momentum", params={"lookback": "6", "top_n": 1, "min_momentum": 0.02})
    client = build_baseline(agent)
    assert isinstance(client, Momentum)
    assert (client.lookback, client.top_n, client.min_momentum) == (6, 1, D("0.02"))
    random_client = build_baseline(Agent(2, "r", "baseline", "random"), default_seed=99)
    assert isinstance(random_client, RandomTrader)
    assert random_client.seed == 99
    with pytest.raises(ParamError):
        build_baseline(Agent(3, "bad", "baseline", "momentum", params={"lookback": "soon"}))
    with pytest.raises(ParamError):
        build_baseline(Agent(3, "bad", "baseline", "mean_reversion", params={"entry_z": "NaN"}))
    with pytest.raises(UnknownStrategyError, match="unknown baseline strategy 'martingale'"):
        build_baseline(Agent(4, "x", "baseline", "martingale"))
