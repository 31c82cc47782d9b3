import type { Candles } from "../api/client";
import { compareDecimal } from "./decimal";

type Candle = Candles["items"][number];

const HOURS = { "1h": 1, "4h": 4, "1d": 24 } as const;
export type ChartInterval = keyof typeof HOURS;
export const CHART_INTERVALS = Object.keys(HOURS) as ChartInterval[];

/** Merges stored hourly candles into 4h or daily ones (UTC-aligned), exactly: prices stay decimal strings. */
export function aggregateCandles(items: readonly Candle[], interval: ChartInterval): Candle[] {
  const periodMs = HOURS[interval] * 3_600_000;
  const merged: Candle[] = [];
  let bucket = Number.NaN;
  for (const candle of items) {
    const start = Math.floor(Date.parse(candle.open_time) / periodMs) * periodMs;
    const last = merged.at(-1);
    if (start !== bucket || !last) {
      bucket = start;
      merged.push({ ...candle, open_time: new Date(start).toISOString().replace(/\.\d{3}Z$/, "Z") });
      continue;
    }
    merged[merged.length - 1] = {
      ...last,
      close_time: candle.close_time,
      high: compareDecimal(candle.high, last.high) > 0 ? candle.high : last.high,
      low: compareDecimal(candle.low, last.low) < 0 ? candle.low : last.low,
      close: candle.close,
      volume: last.volume, // volume is not summed for display here (not charted)
    };
  }
  return merged;
}
