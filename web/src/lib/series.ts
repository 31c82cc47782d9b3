import type { EquitySeries } from "../api/client";
import { toChartNumber } from "./decimal";
import { toEpochSeconds } from "./time";

/** Aligns per-agent series (possibly sampled at different times) on the union of their times; gaps are null. */
export function alignSeries(
  all: readonly (EquitySeries | undefined)[],
  pick: (point: EquitySeries["points"][number]) => string = (p) => p.equity,
): { x: number[]; values: (number | null)[][] } {
  const times = new Set<number>();
  for (const series of all) for (const point of series?.points ?? []) times.add(toEpochSeconds(point.at));
  const x = [...times].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  const values = all.map((series) => {
    const row: (number | null)[] = new Array<number | null>(x.length).fill(null);
    for (const point of series?.points ?? []) row[index.get(toEpochSeconds(point.at))!] = toChartNumber(pick(point));
    return row;
  });
  return { x, values };
}

/** The same for curves sent as columns (GET /api/equity): `at[i]` is when the value was `values[i]`. */
export function alignColumns(all: readonly ({ at: string[]; equity: string[] } | undefined)[]): {
  x: number[];
  values: (number | null)[][];
} {
  const seconds = all.map((curve) => (curve?.at ?? []).map(toEpochSeconds));
  const x = [...new Set(seconds.flat())].sort((a, b) => a - b);
  const index = new Map(x.map((t, i) => [t, i]));
  const values = all.map((curve, c) => {
    const row: (number | null)[] = new Array<number | null>(x.length).fill(null);
    seconds[c]!.forEach((t, i) => (row[index.get(t)!] = toChartNumber(curve!.equity[i]!)));
    return row;
  });
  return { x, values };
}

export const RANGES = { "1d": 1, "1w": 7, "1m": 30, "3m": 91, all: null } as const;
export type RangeKey = keyof typeof RANGES;

export function rangeStart(range: RangeKey, latest: string): string | null {
  const days = RANGES[range];
  if (days === null || !latest) return null;
  return new Date(Date.parse(latest) - days * 86_400_000).toISOString().replace(/\.\d{3}Z$/, "Z");
}
