"""The equal-weight buy-and-hold control: the whole race universe in equal parts, bought once."""

from __future__ import annotations

from decimal import Decimal

from shared.adapters.agents.baselines import EqualWeight, build_baseline
from shared.domain.model import Agent, Portfolio, Side
from shared.domain.rules import RaceRules
from tests.unit.test_baselines import context, decide, executes_cleanly

D = Decimal
CLOSES = {"BTC": [50_000, 51_000], "ETH": [2_000, 2_100], "SOL": [100, 101]}


def test_equal_weight_splits_all_cash_equally_across_every_priced_asset() -> None:
    ctx = context(CLOSES)
    decision = decide(EqualWeight(), ctx)
    assert [(o.symbol, o.side) for o in decision.orders] == [("BTC", Side.BUY), ("ETH", Side.BUY), ("SOL", Side.BUY)]
    notionals = {o.notional_usd for o in decision.orders}
    assert len(notionals) == 1  # equal weight
    (notional,) = notionals
    assert notional is not None
    assert D(33_200) < notional < D(33_334)  # a third of 100,000 less the fee
    after = executes_cleanly(ctx, decision)
    assert D(0) <= after.cash < D(1)  # everything invested, fees included
    assert set(after.positions) == {"BTC", "ETH", "SOL"}


def test_equal_weight_never_trades_again_not_even_to_rebalance() -> None:
    ctx = context(CLOSES)
    after = executes_cleanly(ctx, decide(EqualWeight(), ctx))
    later = decide(EqualWeight(), context({"BTC": [50_000, 90_000], "ETH": [2_000, 500], "SOL": [100, 1]}, after))
    assert later.orders == ()
    # A portfolio that traded and sold out (trade_count > 0) does not buy again either.
    sold_out = Portfolio(1, D(100_000), trade_count=3)
    assert decide(EqualWeight(), context(CLOSES, sold_out)).orders == ()


def test_equal_weight_waits_for_prices_and_respects_fees_min_notional_and_the_position_cap() -> None:
    assert decide(EqualWeight(), context({})).orders == ()
    # 25 USD across three assets: each share is below the 10 USD minimum notional (with its margin): hold.
    assert decide(EqualWeight(), context(CLOSES, Portfolio(1, D(25)))).orders == ()
    capped = RaceRules(max_position_fraction=D("0.2"), fee_bps=D(50))
    ctx = context(CLOSES, rules=capped)
    decision = decide(EqualWeight(), ctx)
    after = executes_cleanly(ctx, decision)  # every order fits the cap and pays its fee: no rejection
    assert all(o.notional_usd is not None and o.notional_usd <= D(20_000) for o in decision.orders)
    assert after.cash > D(39_000)  # three 20% positions: the rest stays in cash


def test_equal_weight_is_built_from_its_model_name() -> None:
    agent = Agent(1, "Equal-Weight Buy & Hold", "baseline", "equal_weight")
    assert isinstance(build_baseline(agent), EqualWeight)
