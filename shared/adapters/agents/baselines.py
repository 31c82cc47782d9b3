"""Baseline agents that need no key (DESIGN.md section 5): controls for the LLMs to beat, and an offline race.

Every baseline is deterministic for the same context (the random trader is seeded by agent and cycle) and cheap:
a full year of hourly cycles replays in seconds. Signals are computed in Decimal so no float touches money.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from shared.domain.model import Agent, AgentDecision, Order, Portfolio, Side
from shared.domain.money import QUANTUM, ZERO, q, q_down
from shared.domain.rules import RaceRules
from shared.services.ports import AgentContext

# Orders are kept clear of the minimum notional: quantity rounding may shave a little off the requested notional.
MIN_NOTIONAL_MARGIN = Decimal("1.01")
MIN_ORDER_USD = Decimal(1)


class ParamError(ValueError):
    """An agent's params cannot configure its baseline strategy."""


class UnknownStrategyError(LookupError):
    """`agent.model` names no baseline strategy."""


class BaselineClient:
    """Shared plumbing: the async port method wraps a fast, pure `decide_now`."""

    strategy = "baseline"

    async def decide(self, context: AgentContext) -> AgentDecision:
        return self.decide_now(context)

    def decide_now(self, context: AgentContext) -> AgentDecision:
        raise NotImplementedError

    def model_settings(self) -> dict[str, Any]:
        """The strategy and its resolved parameters (defaults included), as stored with each decision."""
        values = {k: v if isinstance(v, int | str) else str(v) for k, v in sorted(vars(self).items())}
        return {"kind": "baseline", "strategy": self.strategy, **values}


class AlwaysHold(BaselineClient):
    strategy = "always_hold"

    def decide_now(self, context: AgentContext) -> AgentDecision:
        return AgentDecision(orders=(), reasoning="Control agent: always holds its starting cash.", confidence=1.0)


class BuyAndHold(BaselineClient):
    """Puts all cash into one asset on its first decision, then never trades again."""

    strategy = "buy_and_hold"

    def __init__(self, *, symbol: str = "BTC") -> None:
        self.symbol = symbol.upper()

    def decide_now(self, context: AgentContext) -> AgentDecision:
        portfolio, prices, rules = context.portfolio, context.snapshot.last_prices, context.rules
        if portfolio.positions or portfolio.trade_count:
            return AgentDecision((), f"Holding: already bought {self.symbol}; buy-and-hold never sells.", 1.0)
        if self.symbol not in prices:
            return AgentDecision((), f"Waiting: no {self.symbol} price in this snapshot yet.", 1.0)
        notional = _buy_budget(portfolio, self.symbol, prices, rules, budget=portfolio.cash)
        if not _worth_ordering(notional, rules):
            return AgentDecision((), f"Holding: cash {q(portfolio.cash)} is too small to buy {self.symbol}.", 1.0)
        order = Order(self.symbol, Side.BUY, notional_usd=notional)
        return AgentDecision((order,), f"First decision: buy {self.symbol} with all cash ({notional} USD).", 1.0)


class EqualWeight(BaselineClient):
    """Splits all cash equally across every asset priced in its first snapshot, then never trades again: the
    market-portfolio control (did an agent beat simply owning the whole race universe?).

    Its universe is fixed at that first decision; an asset listed later is not bought. Joining a race already
    under way (a re-seed adds it), it starts from its starting cash at the cycle it joins, like any new agent."""

    strategy = "equal_weight"

    def decide_now(self, context: AgentContext) -> AgentDecision:
        portfolio, prices, rules = context.portfolio, context.snapshot.last_prices, context.rules
        if portfolio.positions or portfolio.trade_count:
            return AgentDecision((), "Holding: already bought the equal-weight basket; it never rebalances.", 1.0)
        if not prices:
            return AgentDecision((), "Waiting: no prices in this snapshot yet.", 1.0)
        symbols = sorted(prices)
        orders = _equal_weight_buys(portfolio, symbols, prices, rules, sold=[])
        if not orders:
            return AgentDecision((), f"Holding: cash {q(portfolio.cash)} is too small to split across the assets.", 1.0)
        bought = ", ".join(o.symbol for o in orders)
        return AgentDecision(tuple(orders), f"First decision: all cash split equally across {bought}.", 1.0)


class Momentum(BaselineClient):
    """Buys the assets that rose most over `lookback` candles, equally weighted; sells holdings that fell."""

    strategy = "momentum"

    def __init__(self, *, lookback: int = 24, top_n: int = 2, min_momentum: Decimal = Decimal("0.01")) -> None:
        if lookback < 1 or top_n < 1:
            raise ParamError("momentum needs lookback >= 1 and top_n >= 1")
        self.lookback, self.top_n, self.min_momentum = lookback, top_n, min_momentum

    def decide_now(self, context: AgentContext) -> AgentDecision:
        portfolio, rules = context.portfolio, context.rules
        momentum: dict[str, Decimal] = {}
        for symbol, rows in context.snapshot.candles.items():
            if len(rows) > self.lookback and rows[-1 - self.lookback].close > 0:
                momentum[symbol] = rows[-1].close / rows[-1 - self.lookback].close - 1
        if not momentum:
            return AgentDecision((), f"Holding: fewer than {self.lookback + 1} candles to measure momentum.", 0.0)

        prices = context.snapshot.last_prices
        sells = [s for s in sorted(portfolio.positions) if s in momentum and momentum[s] < 0]
        leaders = sorted((s for s, m in momentum.items() if m >= self.min_momentum), key=lambda s: (-momentum[s], s))
        leaders = leaders[: self.top_n]
        entries = [s for s in leaders if s not in portfolio.positions]
        orders = _sell_all(portfolio, sells, prices, rules)
        orders += _equal_weight_buys(portfolio, entries, prices, rules, sold=sells)

        ranking = ", ".join(f"{s} {_pct(m)}" for s, m in sorted(momentum.items(), key=lambda i: (-i[1], i[0])))
        reasoning = f"{self.lookback}-candle momentum: {ranking}."
        if orders:
            reasoning += f" Selling fallers {sells or 'none'}; buying new leaders {entries or 'none'}."
        else:
            reasoning += " No new leader to buy and no holding with negative momentum: hold."
        best = max(momentum.values())
        return AgentDecision(tuple(orders), reasoning, _confidence(abs(best) * 10))


class MeanReversion(BaselineClient):
    """Buys assets whose close is far below their rolling mean (z-score) and sells holdings far above it."""

    strategy = "mean_reversion"

    def __init__(
        self,
        *,
        window: int = 24,
        entry_z: Decimal = Decimal(2),
        exit_z: Decimal = Decimal(1),
        position_fraction: Decimal = Decimal("0.25"),
    ) -> None:
        if window < 2 or entry_z <= 0 or not (ZERO < position_fraction <= 1):
            raise ParamError("mean reversion needs window >= 2, entry_z > 0 and 0 < position_fraction <= 1")
        self.window, self.entry_z, self.exit_z, self.position_fraction = window, entry_z, exit_z, position_fraction

    def decide_now(self, context: AgentContext) -> AgentDecision:
        portfolio, rules = context.portfolio, context.rules
        scores: dict[str, Decimal] = {}
        for symbol, rows in context.snapshot.candles.items():
            if len(rows) >= self.window:
                z = _z_score([c.close for c in rows[-self.window :]])
                if z is not None:
                    scores[symbol] = z
        if not scores:
            return AgentDecision((), f"Holding: fewer than {self.window} candles for a z-score.", 0.0)

        prices = context.snapshot.last_prices
        sells = [s for s in sorted(portfolio.positions) if s in scores and scores[s] >= self.exit_z]
        oversold = sorted((s for s, z in scores.items() if z <= -self.entry_z), key=lambda s: (scores[s], s))
        orders = _sell_all(portfolio, sells, prices, rules)
        cash = portfolio.cash + sum((_sale_proceeds(portfolio, s, prices, rules) for s in sells), ZERO)
        equity = portfolio.equity(prices)
        bought: list[str] = []
        for symbol in oversold:
            if symbol in portfolio.positions:
                continue
            # One quantum per order covers the fee's upward rounding, so later buys still fit in the cash.
            budget = min(cash, equity * self.position_fraction) - QUANTUM
            notional = _buy_budget(portfolio, symbol, prices, rules, budget=budget)
            if not _worth_ordering(notional, rules):
                break
            orders.append(Order(symbol, Side.BUY, notional_usd=notional))
            bought.append(symbol)
            cash -= budget

        zs = ", ".join(f"{s} {z:+.2f}" for s, z in sorted(scores.items()))
        reasoning = f"{self.window}-candle z-scores: {zs}. Buy below -{self.entry_z}, sell above +{self.exit_z}."
        reasoning += f" Selling {sells or 'nothing'}; buying {bought or 'nothing'}."
        extreme = max(abs(z) for z in scores.values())
        return AgentDecision(tuple(orders), reasoning, _confidence(extreme / (2 * self.entry_z)))


class RandomTrader(BaselineClient):
    """Trades at random, seeded by (seed, agent, cycle): re-running a cycle gives the same orders."""

    strategy = "random"

    def __init__(self, *, seed: int = 42, trade_probability: Decimal = Decimal("0.3")) -> None:
        if not (ZERO <= trade_probability <= 1):
            raise ParamError("trade_probability must be between 0 and 1")
        self.seed, self.trade_probability = seed, trade_probability

    def decide_now(self, context: AgentContext) -> AgentDecision:
        # A string seed is hashed with SHA-512 by `random`, so it is stable across processes (unlike hash()).
        rng = random.Random(f"{self.seed}:{context.agent.id}:{context.cycle_time.isoformat()}")  # noqa: S311
        portfolio, rules, prices = context.portfolio, context.rules, context.snapshot.last_prices
        symbols = sorted(prices)
        if not symbols or rng.randrange(1000) >= int(self.trade_probability * 1000):
            return AgentDecision((), "Coin flip says hold this cycle.", 0.5)
        held = [s for s in sorted(portfolio.positions) if s in prices]
        percent = rng.randint(10, 50)
        if held and rng.randrange(2) == 0:
            symbol = rng.choice(held)
            quantity = q_down(portfolio.positions[symbol].quantity * percent / 100)
            if quantity > 0 and _worth_ordering(quantity * prices[symbol] * (1 - rules.slippage_rate), rules):
                order = Order(symbol, Side.SELL, quantity=quantity)
                return AgentDecision((order,), f"Random sell of {percent}% of the {symbol} position.", 0.5)
        symbol = rng.choice(symbols)
        notional = _buy_budget(portfolio, symbol, prices, rules, budget=portfolio.cash * percent / 100)
        if not _worth_ordering(notional, rules):
            return AgentDecision((), f"Random pick {symbol}, but too little cash to buy: hold.", 0.5)
        order = Order(symbol, Side.BUY, notional_usd=notional)
        return AgentDecision((order,), f"Random buy of {symbol} with {percent}% of cash ({notional} USD).", 0.5)


# ---------------------------------------------------------------- sizing helpers (mirror the rules exactly)


def _worth_ordering(notional: Decimal, rules: RaceRules) -> bool:
    return notional >= max(rules.min_notional_usd * MIN_NOTIONAL_MARGIN, MIN_ORDER_USD)


def _buy_budget(
    portfolio: Portfolio, symbol: str, prices: Mapping[str, Decimal], rules: RaceRules, *, budget: Decimal
) -> Decimal:
    """The largest buy notional that `budget` pays for with its fee, clipped to the position cap."""
    notional = rules.max_affordable_notional(max(budget, ZERO))
    if rules.max_position_fraction < 1:
        held = portfolio.positions.get(symbol)
        current_value = held.quantity * prices[symbol] if held else ZERO
        notional = min(notional, q_down(portfolio.equity(prices) * rules.max_position_fraction - current_value))
    return max(notional, ZERO)


def _sale_proceeds(portfolio: Portfolio, symbol: str, prices: Mapping[str, Decimal], rules: RaceRules) -> Decimal:
    """Cash a full sale brings in after slippage and fee, computed as `execute_orders` will (rounding down)."""
    price = rules.fill_price(Side.SELL, prices[symbol])
    notional = q(portfolio.positions[symbol].quantity * price)
    return notional - notional * rules.fee_rate - QUANTUM


def _sell_all(portfolio: Portfolio, symbols: list[str], prices: Mapping[str, Decimal], rules: RaceRules) -> list[Order]:
    orders = []
    for symbol in symbols:
        quantity = portfolio.positions[symbol].quantity
        if _worth_ordering(quantity * prices[symbol] * (1 - rules.slippage_rate), rules):
            orders.append(Order(symbol, Side.SELL, quantity=quantity))
    return orders


def _equal_weight_buys(
    portfolio: Portfolio, symbols: list[str], prices: Mapping[str, Decimal], rules: RaceRules, *, sold: list[str]
) -> list[Order]:
    """Split cash (including what this decision's sells bring in) equally across new positions."""
    if not symbols:
        return []
    cash = portfolio.cash + sum((_sale_proceeds(portfolio, s, prices, rules) for s in sold), ZERO)
    # Each buy's fee rounds up by at most one quantum: keep that much aside per order so the last one fits.
    share = (cash - QUANTUM * len(symbols)) / len(symbols)
    orders = []
    for symbol in symbols:
        notional = _buy_budget(portfolio, symbol, prices, rules, budget=share)
        if _worth_ordering(notional, rules):
            orders.append(Order(symbol, Side.BUY, notional_usd=notional))
    return orders


def _z_score(closes: list[Decimal]) -> Decimal | None:
    n = len(closes)
    mean = sum(closes, ZERO) / n
    # One pass over squares (exact enough at 28 significant digits for prices up to 1e9).
    variance = sum((c * c for c in closes), ZERO) / n - mean * mean
    if variance <= 0:
        return None
    return (closes[-1] - mean) / variance.sqrt()


def _pct(fraction: Decimal) -> str:
    return f"{fraction * 100:+.2f}%"


def _confidence(value: Decimal) -> float:
    return float(min(max(value, ZERO), Decimal(1)).quantize(Decimal("0.01")))


# ---------------------------------------------------------------- construction from an agent's params

STRATEGIES: Mapping[str, Callable[[Mapping[str, Any], int], BaselineClient]] = {
    "always_hold": lambda p, seed: AlwaysHold(),
    "buy_and_hold": lambda p, seed: BuyAndHold(symbol=str(p.get("symbol", "BTC"))),
    "equal_weight": lambda p, seed: EqualWeight(),
    "momentum": lambda p, seed: Momentum(
        lookback=_int(p, "lookback", 24), top_n=_int(p, "top_n", 2), min_momentum=_dec(p, "min_momentum", "0.01")
    ),
    "mean_reversion": lambda p, seed: MeanReversion(
        window=_int(p, "window", 24),
        entry_z=_dec(p, "entry_z", "2"),
        exit_z=_dec(p, "exit_z", "1"),
        position_fraction=_dec(p, "position_fraction", "0.25"),
    ),
    "random": lambda p, seed: RandomTrader(
        seed=_int(p, "seed", seed), trade_probability=_dec(p, "trade_probability", "0.3")
    ),
}


def build_baseline(agent: Agent, *, default_seed: int = 42) -> BaselineClient:
    """The baseline named by `agent.model`; UnknownStrategyError or ParamError when the agent cannot be built."""
    try:
        make = STRATEGIES[agent.model]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise UnknownStrategyError(f"unknown baseline strategy {agent.model!r}; known: {known}") from None
    return make(agent.params, default_seed)


def _int(params: Mapping[str, Any], key: str, default: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ParamError(f"param {key!r} must be an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ParamError(f"param {key!r} must be an integer, got {value!r}") from None


def _dec(params: Mapping[str, Any], key: str, default: str) -> Decimal:
    value = params.get(key, default)
    if isinstance(value, bool):
        raise ParamError(f"param {key!r} must be a number, got {value!r}")
    try:
        # str() first: a float param read from JSON becomes its shortest repr, never its binary expansion.
        result = Decimal(str(value))
    except ArithmeticError:
        raise ParamError(f"param {key!r} must be a number, got {value!r}") from None
    if not result.is_finite():
        raise ParamError(f"param {key!r} must be finite, got {value!r}")
    return result
