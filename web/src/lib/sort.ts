import type { LeaderboardEntry } from "../api/client";
import { compareDecimal } from "./decimal";

export type SortDirection = "asc" | "desc";
export type LeaderboardColumn = keyof LeaderboardEntry;

const DECIMAL_COLUMNS = new Set<LeaderboardColumn>([
  "equity",
  "return_pct",
  "max_drawdown_pct",
  "fees_paid",
  "llm_cost_usd",
]);

// Columns holding an object sort by one number of it: the excess over buy-and-hold by its point estimate.
function sortValue(row: LeaderboardEntry, column: LeaderboardColumn) {
  if (column === "excess_over_buy_and_hold") return row.excess_over_buy_and_hold?.value ?? null;
  return row[column];
}

/** Sorts exactly: decimal strings compared as decimals, missing values always last. */
export function sortRows(rows: readonly LeaderboardEntry[], column: LeaderboardColumn, direction: SortDirection) {
  const sign = direction === "asc" ? 1 : -1;
  return [...rows].sort((a, b) => {
    const x = sortValue(a, column);
    const y = sortValue(b, column);
    if (x == null || y == null) return x == null ? (y == null ? a.rank - b.rank : 1) : -1;
    let result: number;
    if (DECIMAL_COLUMNS.has(column)) result = compareDecimal(String(x), String(y));
    else if (typeof x === "number" && typeof y === "number") result = x - y;
    else if (typeof x === "boolean") result = Number(x) - Number(y);
    else result = String(x).localeCompare(String(y));
    return result * sign || a.rank - b.rank;
  });
}
