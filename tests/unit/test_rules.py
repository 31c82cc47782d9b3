"""Rules of the race (DESIGN.md section 4): every rejection reason, fees, slippage, ordering, caps, rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.domain.model import Order, Portfolio, Position, RejectionReason, Side
from shared.domain.rules import RaceRules, execute_orders

D = Decimal
PRICES = {"BTC": D(50_000), "ETH": D(2_000)}
RULES = RaceRules()


def buy(symbol: str, *, qty: str | None = None, usd: str | None = None) -> Order:
    return Order(symbol, Side.BUY, quantity=D(qty) if qty else None, notional_usd=D(usd) if usd else None)


def sell(symbol: str, *, qty: str | None = None, usd: str | None = None) -> Order:
    return Order(symbol, Side.SELL, quantity=D(qty) if qty else None, notional_usd=D(usd) if usd else None)


def cash_only(cash: int | str = 100_000) -> Portfolio:
    return Portfolio(agent_id=1, cash=D(cash))


def only_rejection(result_rejections: tuple[object, ...]) -> RejectionReason:
    assert len(result_rejections) == 1
    return result_rejections[0].reason  # type: ignore[attr-defined, no-any-return]


def test_buy_pays_slipped_price_and_fee() -> None:
    result = execute_orders(cash_only(), [buy("BTC", qty="1")], PRICES, RULES)
    (trade,) = result.trades
    assert trade.price == D("50025.00000000")  # 5 bps above the last close
    assert trade.notional == D("50025.00000000")
    assert trade.fee == D("50.02500000")  # 10 bps of notional
    assert result.portfolio.cash == D(100_000) - trade.notional - trade.fee
    assert result.portfolio.positions["BTC"].quantity == D(1)
    assert result.portfolio.fees_paid == trade.fee
    assert result.portfolio.trade_count == 1


def test_sell_gets_slipped_price_below_close_and_pays_fee() -> None:
    portfolio = Portfolio(1, D(0), {"BTC": Position(D(2), D(40_000))})
    result = execute_orders(portfolio, [sell("BTC", qty="1")], PRICES, RULES)
    (trade,) = result.trades
    assert trade.price == D("49975.00000000")
    assert trade.fee > 0
    assert result.portfolio.cash == trade.notional - trade.fee
    assert result.portfolio.positions["BTC"].quantity == D(1)


def test_selling_everything_removes_the_position() -> None:
    portfolio = Portfolio(1, D(0), {"ETH": Position(D(3), D(1_000))})
    result = execute_orders(portfolio, [sell("ETH", qty="3")], PRICES, RULES)
    assert "ETH" not in result.portfolio.positions


def test_input_portfolio_is_not_modified() -> None:
    portfolio = cash_only()
    execute_orders(portfolio, [buy("BTC", qty="1")], PRICES, RULES)
    assert portfolio.cash == D(100_000)
    assert portfolio.positions == {}


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (buy("DOGE", qty="1"), RejectionReason.UNKNOWN_SYMBOL),
        (buy("BTC", qty="0"), RejectionReason.INVALID_SIZE),
        (buy("BTC", qty="-1"), RejectionReason.INVALID_SIZE),
        (Order("BTC", Side.BUY), RejectionReason.INVALID_SIZE),
        (Order("BTC", Side.BUY, quantity=D(1), notional_usd=D(10)), RejectionReason.INVALID_SIZE),
        (buy("BTC", qty="0.000000001"), RejectionReason.INVALID_SIZE),  # rounds to zero at 8 places
        (buy("BTC", usd="5"), RejectionReason.BELOW_MIN_NOTIONAL),
        (buy("BTC", qty="3"), RejectionReason.INSUFFICIENT_CASH),
        (sell("BTC", qty="1"), RejectionReason.INSUFFICIENT_POSITION),
    ],
)
def test_each_rule_breaking_order_is_rejected_with_its_reason(order: Order, reason: RejectionReason) -> None:
    result = execute_orders(cash_only(), [order], PRICES, RULES)
    assert result.trades == ()
    assert only_rejection(result.rejections) is reason
    assert result.rejections[0].detail
    assert result.portfolio.cash == D(100_000)


def test_non_finite_size_is_invalid() -> None:
    result = execute_orders(cash_only(), [buy("BTC", usd="Infinity")], PRICES, RULES)
    assert only_rejection(result.rejections) is RejectionReason.INVALID_SIZE


def test_zero_price_is_no_price() -> None:
    result = execute_orders(cash_only(), [buy("BTC", qty="1")], {"BTC": D(0)}, RULES)
    assert only_rejection(result.rejections) is RejectionReason.NO_PRICE


def test_position_cap_rejects_a_buy_beyond_the_fraction_of_equity() -> None:
    rules = RaceRules(max_position_fraction=D("0.25"))
    result = execute_orders(cash_only(), [buy("BTC", usd="30000"), buy("ETH", usd="20000")], PRICES, rules)
    assert only_rejection(result.rejections) is RejectionReason.POSITION_CAP
    assert [t.symbol for t in result.trades] == ["ETH"]


def test_too_many_orders_are_rejected_beyond_the_limit() -> None:
    rules = RaceRules(max_orders_per_decision=2)
    result = execute_orders(cash_only(), [buy("ETH", usd="100")] * 3, PRICES, rules)
    assert len(result.trades) == 2
    assert only_rejection(result.rejections) is RejectionReason.TOO_MANY_ORDERS


def test_sells_execute_before_buys_so_their_cash_funds_the_buys() -> None:
    portfolio = Portfolio(1, D(0), {"BTC": Position(D(1), D(40_000))})
    result = execute_orders(portfolio, [buy("ETH", usd="40000"), sell("BTC", qty="1")], PRICES, RULES)
    assert [t.side for t in result.trades] == [Side.SELL, Side.BUY]
    assert result.rejections == ()


def test_a_rejected_order_does_not_stop_the_rest() -> None:
    orders = [buy("DOGE", qty="1"), buy("ETH", usd="1000")]
    result = execute_orders(cash_only(), orders, PRICES, RULES)
    assert [t.symbol for t in result.trades] == ["ETH"]
    assert only_rejection(result.rejections) is RejectionReason.UNKNOWN_SYMBOL


def test_notional_order_quantity_rounds_down_and_fee_rounds_up() -> None:
    result = execute_orders(cash_only(), [buy("BTC", usd="1000")], {"BTC": D(3)}, RULES)
    (trade,) = result.trades
    assert trade.quantity == D("333.16674995")  # 1000 / 3.0015 = 333.166749958..., rounded toward zero
    assert trade.notional == D("999.99999997")
    assert trade.fee == D("1.00000000")  # 0.99999999997 rounded up, never in the trader's favour
    assert trade.quantity.as_tuple().exponent >= -8
    assert trade.fee.as_tuple().exponent >= -8


def test_max_affordable_notional_fits_cash_with_fee() -> None:
    cash = D("12345.67891234")
    notional = RULES.max_affordable_notional(cash)
    result = execute_orders(cash_only(cash), [buy("ETH", usd=str(notional))], PRICES, RULES)
    assert result.rejections == ()
    assert result.portfolio.cash >= 0


def test_fee_is_charged_even_with_zero_bps_rounding() -> None:
    rules = RaceRules(fee_bps=D("0.01"))
    result = execute_orders(cash_only(), [buy("ETH", usd="20")], PRICES, rules)
    assert result.trades[0].fee == D("0.00002")  # rounded up, never down to nothing


def test_average_cost_blends_buys() -> None:
    portfolio = Portfolio(1, D(100_000), {"ETH": Position(D(1), D(1_000))})
    result = execute_orders(portfolio, [buy("ETH", qty="1")], PRICES, RULES)
    assert result.portfolio.positions["ETH"].avg_cost == D("1500.50000000")


def test_rules_validate_their_configuration() -> None:
    with pytest.raises(ValueError, match="starting cash"):
        RaceRules(starting_cash=D(0))
    with pytest.raises(ValueError, match="position fraction"):
        RaceRules(max_position_fraction=D("1.5"))


def test_dust_whose_notional_rounds_to_zero_is_rejected_not_traded_for_free() -> None:
    rules = RaceRules(min_notional_usd=D(0))
    result = execute_orders(cash_only("1"), [buy("XRP", qty="0.00000001")], {"XRP": D("0.0001")}, rules)
    assert result.trades == ()
    assert only_rejection(result.rejections) is RejectionReason.INVALID_SIZE
    assert result.portfolio.cash == D(1)
    assert result.portfolio.positions == {}


@pytest.mark.parametrize("size", ["1e12000001", "1e20", "123456789012345678901234567890", "1E+999999", "1000000000001"])
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
@pytest.mark.parametrize("field", ["quantity", "notional_usd"])
def test_a_huge_order_size_is_rejected_with_a_reason_not_raised(size: str, side: Side, field: str) -> None:
    order = Order("BTC", side, **{field: D(size)})  # type: ignore[arg-type]
    book = Portfolio(agent_id=1, cash=D(100_000), positions={"BTC": Position(D(1), D(40_000))})

    result = execute_orders(book, [order, buy("ETH", usd="1000")], PRICES, RULES)

    assert [r.reason for r in result.rejections] == [RejectionReason.INVALID_SIZE]
    assert "largest order size" in result.rejections[0].detail
    assert [t.symbol for t in result.trades] == ["ETH"]  # the rest of the decision still executes
    assert result.portfolio.positions["BTC"].quantity == D(1)


def test_a_price_beyond_decimal_precision_rejects_the_order_instead_of_raising() -> None:
    result = execute_orders(cash_only(), [buy("BTC", qty="999999999999")], {"BTC": D("1e30")}, RULES)

    assert only_rejection(result.rejections) is RejectionReason.INVALID_SIZE
    assert result.portfolio == cash_only()
