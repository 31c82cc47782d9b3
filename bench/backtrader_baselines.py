"""The five baselines written for backtrader, over the same bundled candles, for bench_replay.py.

Same parameters as shared/adapters/agents/baselines.py (momentum 24/top 2/+1%, mean reversion 24/-2/+1/25%,
random 30% per cycle, buy-and-hold BTC, always-hold), same fee (10 bps) and slippage (5 bps), each strategy in
its own Cerebro with the five assets as feeds: what a user comparing against backtrader would run.
"""

from __future__ import annotations

import gzip
import random
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import backtrader as bt

CANDLES = Path(__file__).resolve().parent.parent / "shared" / "adapters" / "market_data" / "candles"
SYMBOLS = ("BTC", "ETH", "SOL", "XRP", "BNB")
START = datetime(2024, 1, 1)


class _Base(bt.Strategy):  # type: ignore[misc]
    def by_symbol(self) -> dict[str, bt.feeds.DataBase]:
        return {d._name: d for d in self.datas if len(d)}


class AlwaysHold(_Base):  # type: ignore[misc]
    def next(self) -> None:
        return


class BuyAndHold(_Base):  # type: ignore[misc]
    def next(self) -> None:
        btc = self.getdatabyname("BTC")
        if not self.getposition(btc).size:
            self.buy(data=btc, size=self.broker.getcash() / (btc.close[0] * 1.0016))


class Momentum(_Base):  # type: ignore[misc]
    params = (("lookback", 24), ("top_n", 2), ("min_momentum", 0.01))

    def next(self) -> None:
        momentum = {
            s: d.close[0] / d.close[-self.p.lookback] - 1
            for s, d in self.by_symbol().items()
            if len(d) > self.p.lookback
        }
        if not momentum:
            return
        for symbol, m in momentum.items():
            data = self.getdatabyname(symbol)
            if m < 0 and self.getposition(data).size:
                self.close(data=data)
        leaders = sorted((s for s, m in momentum.items() if m >= self.p.min_momentum), key=lambda s: -momentum[s])
        entries = [s for s in leaders[: self.p.top_n] if not self.getposition(self.getdatabyname(s)).size]
        if entries:
            share = self.broker.getcash() / len(entries) / 1.0016
            for symbol in entries:
                data = self.getdatabyname(symbol)
                self.buy(data=data, size=share / data.close[0])


class MeanReversion(_Base):  # type: ignore[misc]
    params = (("window", 24), ("entry_z", 2.0), ("exit_z", 1.0), ("position_fraction", 0.25))

    def next(self) -> None:
        for data in self.by_symbol().values():
            if len(data) < self.p.window:
                continue
            closes = list(data.close.get(size=self.p.window))
            sd = statistics.pstdev(closes)
            if sd <= 0:
                continue
            z = (closes[-1] - statistics.fmean(closes)) / sd
            held = self.getposition(data).size
            if held and z >= self.p.exit_z:
                self.close(data=data)
            elif not held and z <= -self.p.entry_z:
                budget = min(self.broker.getcash(), self.broker.getvalue() * self.p.position_fraction) / 1.0016
                self.buy(data=data, size=budget / data.close[0])


class RandomTrader(_Base):  # type: ignore[misc]
    params = (("seed", 42), ("trade_probability", 0.3))

    def next(self) -> None:
        rng = random.Random(f"{self.p.seed}:{self.datas[0].datetime.datetime(0).isoformat()}")
        if rng.random() >= self.p.trade_probability:
            return
        feeds = self.by_symbol()
        percent = rng.randint(10, 50) / 100
        held = [s for s, d in feeds.items() if self.getposition(d).size]
        if held and rng.randrange(2) == 0:
            data = feeds[rng.choice(held)]
            self.sell(data=data, size=self.getposition(data).size * percent)
            return
        data = feeds[rng.choice(sorted(feeds))]
        self.buy(data=data, size=self.broker.getcash() * percent / 1.0016 / data.close[0])


STRATEGIES = (BuyAndHold, Momentum, MeanReversion, RandomTrader, AlwaysHold)


def _csv_files() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-bt-"))
    for symbol in SYMBOLS:
        with gzip.open(CANDLES / f"{symbol}_1h.csv.gz", "rb") as src, open(folder / f"{symbol}.csv", "wb") as dst:
            shutil.copyfileobj(src, dst)
    return folder


def run_backtrader(cycles: int) -> float:
    """Seconds for all five strategies over `cycles` hourly bars (feed loading included, as in a real run)."""
    folder = _csv_files()
    end = START + timedelta(hours=cycles)
    started = time.perf_counter()
    for strategy in STRATEGIES:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.broker.setcash(100_000.0)
        cerebro.broker.setcommission(commission=0.001)
        cerebro.broker.set_slippage_perc(0.0005)
        for symbol in SYMBOLS:
            feed = bt.feeds.GenericCSVData(
                dataname=str(folder / f"{symbol}.csv"),
                dtformat="%Y-%m-%dT%H:%M:%SZ",
                timeframe=bt.TimeFrame.Minutes,
                compression=60,
                fromdate=START,
                todate=end,
                datetime=0,
                open=1,
                high=2,
                low=3,
                close=4,
                volume=5,
                openinterest=-1,
            )
            cerebro.adddata(feed, name=symbol)
        cerebro.addstrategy(strategy)
        cerebro.run()
    elapsed = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    return elapsed
