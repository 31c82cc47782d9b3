"""Time `compute_race_statistics` for 20 agents + 4 controls over a year of hourly marks (8,760 each).

The agents trade the bundled 2024 BTC candles: each moves between cash and BTC at random times (about one fill
every 6 hours), so its marks, fills and decisions look like a real race's (confidence, latency, cost, a few
fallback HOLDs and rejections). Prints the first call (which imports numpy and arch), the median of repeated
calls, and the bootstrap comparisons (92 agent-control pairs) on their own. Target: < 2 s for the whole call.

    PYTHONPATH=. .venv/bin/python bench/bench_statistics.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.adapters.market_data.replay import BUNDLED_CANDLES_DIR
from shared.domain.model import Side
from shared.domain.money import q, q_down
from shared.domain.statistics import AgentInputs, AgentStatistics, DecisionFacts, EquityMark, Fill

CYCLES = 8760
START = Decimal(100_000)
FEE_RATE = Decimal("0.001")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOLD_CODES = ("timeout", "rate_limited", "circuit_open", "invalid_output")


def btc_closes() -> list[Decimal]:
    with gzip.open(BUNDLED_CANDLES_DIR / "BTC_1h.csv.gz", "rt", newline="") as handle:
        closes = [Decimal(row["close"]) for row in csv.DictReader(handle)]
    return closes[:CYCLES]


def trading_agent(agent_id: int, closes: list[Decimal], rng: random.Random, *, trade_every: float) -> AgentInputs:
    cash, units = START, Decimal(0)
    marks: list[EquityMark] = []
    fills: list[Fill] = []
    decisions: list[DecisionFacts] = []
    for hour, price in enumerate(closes):
        at = T0 + timedelta(hours=hour)
        traded = False
        if trade_every and rng.random() < 1 / trade_every:
            target = Decimal(rng.choice((0, 25, 50, 75, 100))) / 100
            equity = cash + units * price
            want = q_down(equity * target / price)
            if want > units:  # buy: fee paid from cash
                quantity = q_down(min(want - units, cash / (price * (1 + FEE_RATE))))
                if quantity > 0:
                    fee = q(quantity * price * FEE_RATE)
                    cash -= quantity * price + fee
                    units += quantity
                    fills.append(Fill(at, "BTC", Side.BUY, quantity, price, fee))
                    traded = True
            elif want < units:
                quantity = units - want
                fee = q(quantity * price * FEE_RATE)
                cash += quantity * price - fee
                units -= quantity
                fills.append(Fill(at, "BTC", Side.SELL, quantity, price, fee))
                traded = True
        hold = rng.choice(HOLD_CODES) if rng.random() < 0.02 else None
        rejected = ("insufficient_cash",) if rng.random() < 0.01 else ()
        decisions.append(
            DecisionFacts(
                at=at,
                parse_failed=hold == "invalid_output",
                hold_code=hold,
                orders=int(traded) + len(rejected),
                rejection_reasons=rejected,
                latency_ms=rng.lognormvariate(6.5, 0.4) if trade_every else None,
                cost_usd=Decimal("0.0004") if trade_every else None,
                confidence=rng.random() if trade_every else None,
                traded=traded,
            )
        )
        marks.append(EquityMark(at, q(cash + units * price), q(cash)))
    return AgentInputs(agent_id, f"agent-{agent_id}", marks, fills, decisions)


def race() -> tuple[list[AgentInputs], list[int]]:
    closes = btc_closes()
    rng = random.Random(2024)
    agents = [trading_agent(i, closes, rng, trade_every=rng.uniform(3, 12)) for i in range(1, 21)]
    # Controls: buy-and-hold BTC (one fill), always-hold (cash), a random trader, and a slow rebalancer.
    holder = trading_agent(21, closes, random.Random(1), trade_every=1e9)
    first = closes[0]
    quantity = q_down(START / (first * (1 + FEE_RATE)))
    fee = q(quantity * first * FEE_RATE)
    cash_left = START - quantity * first - fee
    holder = AgentInputs(
        21,
        "buy-and-hold BTC",
        [
            EquityMark(m.at, q(cash_left + quantity * p), q(cash_left))
            for m, p in zip(holder.marks, closes, strict=True)
        ],
        [Fill(T0, "BTC", Side.BUY, quantity, first, fee)],
        holder.decisions,
    )
    always = AgentInputs(
        22, "always-hold", [EquityMark(T0 + timedelta(hours=h), START, START) for h in range(CYCLES)], [], []
    )
    random_trader = trading_agent(23, closes, random.Random(7), trade_every=2)
    rebalancer = trading_agent(24, closes, random.Random(8), trade_every=48)
    return [*agents, holder, always, random_trader, rebalancer], [21, 22, 23, 24]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    built = time.perf_counter()
    agents, controls = race()
    marks = sum(len(a.marks) for a in agents)
    fills = sum(len(a.fills) for a in agents)
    print(
        f"race: {len(agents)} agents ({len(controls)} controls), {marks:,} marks, {fills:,} fills, "
        f"{sum(len(a.decisions) for a in agents):,} decisions (built in {time.perf_counter() - built:.1f} s)"
    )

    from shared.domain.race_statistics import compute_race_statistics

    def run() -> dict[int, AgentStatistics]:
        return compute_race_statistics(agents, control_ids=controls, starting_cash=START, periods_per_year=8760.0)

    wall, cpu = time.perf_counter(), time.process_time()
    results = run()
    print(
        f"compute_race_statistics, first call (imports numpy/arch): {time.perf_counter() - wall:.3f} s wall, "
        f"{time.process_time() - cpu:.3f} s CPU"
    )

    walls, cpus = [], []
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        again = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert again == results  # deterministic for the seed
    print(
        f"compute_race_statistics, warm, median of {args.repeats}: {statistics.median(walls):.3f} s wall "
        f"(min {min(walls):.3f}), {statistics.median(cpus):.3f} s CPU  [target < 2 s]"
    )

    from shared.domain.significance import Curve, compare_with_controls

    curves = [
        Curve(a.agent_id, a.name, tuple(m.at for m in a.marks), tuple(float(m.equity) for m in a.marks)) for a in agents
    ]
    walls, cpus = [], []
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        comparisons = compare_with_controls(curves, controls, replications=1000, confidence=0.95, seed=2024)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    pairs = sum(len(c) for c in comparisons.values())
    block = next(c.block_length for found in comparisons.values() for c in found)
    print(
        f"bootstrap alone: {pairs} agent-control pairs x 1,000 replications x {CYCLES - 1:,} returns "
        f"(block length {block}): median {statistics.median(walls):.3f} s wall, {statistics.median(cpus):.3f} s CPU"
    )

    best = max(results.values(), key=lambda s: s.sharpe or float("-inf"))
    versus = best.versus_controls[0]
    print(
        f"sample: {best.name} sharpe {best.sharpe:.2f} (Lo SE {best.sharpe_standard_error:.2f}, "
        f"DSR {best.deflated_sharpe_probability:.3f}); vs {versus.control_name}: excess "
        f"{versus.excess_return:+.3f} [{versus.low:+.3f}, {versus.high:+.3f}] significant={versus.significant}"
    )


if __name__ == "__main__":
    main()
