import { useMemo } from "react";
import { useSearchParams } from "react-router-dom";

import { useCandles, usePrices } from "../api/queries";
import { CandleChart } from "../components/CandleChart";
import { Empty, Loading, QueryError } from "../components/States";
import { aggregateCandles, CHART_INTERVALS, type ChartInterval } from "../lib/candles";
import { formatPrice } from "../lib/decimal";
import { formatTime } from "../lib/time";


export function MarketPage() {
  const prices = usePrices();
  const [params, setParams] = useSearchParams();
  const items = prices.data?.items ?? [];
  const symbol = params.get("symbol") ?? items[0]?.symbol ?? "";
  const requested = params.get("interval") as ChartInterval | null;
  const interval: ChartInterval = requested && CHART_INTERVALS.includes(requested) ? requested : "4h";
  // The race stores hourly candles; longer ones are merged here from them, exactly.
  const candles = useCandles(symbol, "1h");
  const shown = useMemo(
    () => (candles.data ? { ...candles.data, interval, items: aggregateCandles(candles.data.items, interval) } : undefined),
    [candles.data, interval],
  );
  const set = (key: string, value: string) =>
    setParams((current) => {
      const next = new URLSearchParams(current);
      next.set(key, value);
      return next;
    });

  return (
    <>
      <header className="page-header">
        <h1>Market</h1>
      </header>
      <section className="card" aria-labelledby="prices-title">
        <h2 id="prices-title">Latest prices</h2>
        {prices.isPending ? <Loading what="prices" /> : null}
        {prices.isError && !prices.data ? <QueryError error={prices.error} what="prices" /> : null}
        {prices.data && items.length === 0 ? <Empty>No prices yet.</Empty> : null}
        {items.length > 0 ? (
          <table className="table" data-testid="prices">
            <thead>
              <tr>
                <th>Asset</th>
                <th className="num">Price</th>
                <th>As of</th>
              </tr>
            </thead>
            <tbody>
              {items.map((p) => (
                <tr key={p.symbol} aria-selected={p.symbol === symbol}>
                  <td>
                    <button type="button" className="linkish" onClick={() => set("symbol", p.symbol)}>
                      {p.symbol}
                    </button>
                  </td>
                  <td className="num">{formatPrice(p.price)}</td>
                  <td>{formatTime(p.as_of)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </section>
      {symbol ? (
        <section className="card" aria-labelledby="candles-title">
          <div className="toolbar">
            <h2 id="candles-title">{symbol} candles</h2>
            <div role="group" aria-label="Interval" className="segmented">
              {CHART_INTERVALS.map((value) => (
                <button key={value} type="button" aria-pressed={interval === value} onClick={() => set("interval", value)}>
                  {value}
                </button>
              ))}
            </div>
          </div>
          {candles.isError && !candles.data ? <QueryError error={candles.error} what="candles" /> : null}
          {shown && shown.items.length === 0 ? <Empty>No candles stored yet.</Empty> : null}
          {shown && shown.items.length > 0 ? <CandleChart candles={shown} /> : null}
        </section>
      ) : null}
    </>
  );
}
