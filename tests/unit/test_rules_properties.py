"""Property tests of the race's invariants over random portfolios, orders and prices."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.model import Order, Portfolio, Position, Side
from shared.domain.money import q
from shared.domain.rules import RaceRules, execute_orders

SYMBOLS = ["BTC", "ETH", "SOL"]


def decimals(low: str, high: str, places: int = 8) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=places, allow_nan=False)


prices = st.fixed_dictionaries({s: decimals("0.0001", "200000", 4) for s in SYMBOLS})

positions = st.dictionaries(
    st.sampled_from(SYMBOLS),
    st.builds(Position, quantity=decimals("0.00000001", "50"), avg_cost=decimals("0.01", "100000", 2)),
    max_size=3,
)

portfolios = st.builds(Portfolio, agent_id=st.just(1), cash=decimals("0", "1000000"), positions=positions)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    symbol = draw(st.sampled_from([*SYMBOLS, "DOGE"]))
    side = draw(st.sampled_from(list(Side)))
    if draw(st.booleans()):
        return Order(symbol, side, quantity=draw(decimals("-1", "60")))
    return Order(symbol, side, notional_usd=draw(decimals("-10", "2000000", 2)))


rules_strategy = st.builds(
    RaceRules,
    fee_bps=decimals("0.01", "100", 2),
    slippage_bps=decimals("0", "100", 2),
    min_notional_usd=decimals("0", "50", 2),
    max_position_fraction=decimals("0.05", "1", 2),
    max_orders_per_decision=st.integers(1, 12),
)


@settings(max_examples=300, deadline=None)
@given(portfolio=portfolios, order_list=st.lists(orders(), max_size=15), marks=prices, rules=rules_strategy)
def test_invariants_hold_for_any_orders(
    portfolio: Portfolio, order_list: list[Order], marks: dict[str, Decimal], rules: RaceRules
) -> None:
    result = execute_orders(portfolio, order_list, marks, rules)
    book = result.portfolio

    assert book.cash >= 0
    assert all(p.quantity > 0 for p in book.positions.values())
    assert len(result.trades) + len(result.rejections) == len(order_list)
    assert all(t.fee > 0 for t in result.trades)
    assert book.fees_paid == portfolio.fees_paid + sum((t.fee for t in result.trades), Decimal(0))
    assert book.trade_count == portfolio.trade_count + len(result.trades)

    # Cash moves by exactly the trades' notionals and fees: nothing is created or lost.
    cash_flow = sum(
        ((t.notional - t.fee) if t.side is Side.SELL else -(t.notional + t.fee) for t in result.trades), Decimal(0)
    )
    assert book.cash == portfolio.cash + cash_flow

    # Equity is cash plus quantity x price for every position.
    expected_equity = q(book.cash + sum((p.quantity * marks[s] for s, p in book.positions.items()), Decimal(0)))
    assert book.equity(marks) == expected_equity


@settings(max_examples=200, deadline=None)
@given(portfolio=portfolios, order_list=st.lists(orders(), max_size=10), marks=prices)
def test_execution_is_deterministic_and_sells_come_first(
    portfolio: Portfolio, order_list: list[Order], marks: dict[str, Decimal]
) -> None:
    first = execute_orders(portfolio, order_list, marks, RaceRules())
    second = execute_orders(portfolio, order_list, marks, RaceRules())
    assert first == second
    sides = [t.side for t in first.trades]
    assert sides == sorted(sides, key=lambda s: 0 if s is Side.SELL else 1)


@settings(max_examples=200, deadline=None)
@given(cash=decimals("0", "10000000"), fee_bps=decimals("0", "500", 2))
def test_max_affordable_notional_never_exceeds_cash_with_fee(cash: Decimal, fee_bps: Decimal) -> None:
    rules = RaceRules(fee_bps=fee_bps)
    notional = rules.max_affordable_notional(cash)
    assert notional >= 0
    assert notional * (1 + rules.fee_rate) <= cash
