import { useMemo, useState } from "react";
import { Link } from "react-router-dom";

import type { LeaderboardEntry } from "../api/client";
import { formatInt, formatMoney, formatPct } from "../lib/decimal";
import { formatFraction, formatRatio, formatShare } from "../lib/figures";
import { seriesStyle, prefersDark } from "../lib/palette";
import { type LeaderboardColumn, type SortDirection, sortRows } from "../lib/sort";
import { formatTime } from "../lib/time";
import { ExcessReturnCell } from "./ExcessReturn";
import { Empty } from "./States";

interface Column {
  key: LeaderboardColumn;
  label: string;
  numeric?: boolean;
  /** The definition, as a tooltip on the header (the API documents each field the same way). */
  title?: string;
  render: (row: LeaderboardEntry) => React.ReactNode;
}

// The figures a reader compares come first, right after the agent (on a phone the rest scrolls sideways).
const COLUMNS: Column[] = [
  { key: "rank", label: "#", numeric: true, render: (r) => r.rank },
  {
    key: "name",
    label: "Agent",
    render: (r) => (
      <Link to={`/agents/${r.agent_id}`} className="agent-link">
        {r.name}
      </Link>
    ),
  },
  { key: "equity", label: "Equity", numeric: true, render: (r) => formatMoney(r.equity) },
  {
    key: "return_pct",
    label: "Return",
    numeric: true,
    render: (r) => <span className={signClass(r.return_pct)}>{formatPct(r.return_pct)}</span>,
  },
  {
    key: "excess_over_buy_and_hold",
    label: "vs Buy & Hold BTC",
    title:
      "Excess total return over the buy-and-hold BTC control, with its 95% block-bootstrap interval and whether " +
      "that interval excludes zero.",
    render: (r) => <ExcessReturnCell excess={r.excess_over_buy_and_hold} />,
  },
  {
    key: "sharpe",
    label: "Sharpe",
    numeric: true,
    title: "Annualised Sharpe ratio of per-cycle returns (risk-free 0), as computed after the latest cycle.",
    render: (r) => formatRatio(r.sharpe),
  },
  { key: "max_drawdown_pct", label: "Max DD", numeric: true, render: (r) => formatPct(r.max_drawdown_pct, false) },
  {
    key: "win_rate",
    label: "Win rate",
    numeric: true,
    title: "Share of closed round trips (FIFO lots, fees included) that made money.",
    render: (r) => formatShare(r.win_rate),
  },
  {
    key: "net_return",
    label: "Net return",
    numeric: true,
    title: "Total return after the inference (LLM) cost recorded with its decisions.",
    render: (r) => <span className={floatSign(r.net_return)}>{formatFraction(r.net_return)}</span>,
  },
  { key: "trades", label: "Trades", numeric: true, render: (r) => formatInt(r.trades) },
  { key: "fees_paid", label: "Fees", numeric: true, render: (r) => formatMoney(r.fees_paid) },
  { key: "provider", label: "Provider", render: (r) => r.provider },
  { key: "model", label: "Model", render: (r) => <span className="mono">{r.model}</span> },
  {
    key: "active",
    label: "Status",
    render: (r) => (r.active ? "racing" : <span className="badge-inactive">inactive</span>),
  },
  { key: "prompt_tokens", label: "Prompt tok", numeric: true, render: (r) => formatInt(r.prompt_tokens) },
  { key: "completion_tokens", label: "Compl. tok", numeric: true, render: (r) => formatInt(r.completion_tokens) },
  { key: "llm_cost_usd", label: "LLM cost", numeric: true, render: (r) => formatMoney(r.llm_cost_usd) },
  { key: "equity_at", label: "Marked at", render: (r) => formatTime(r.equity_at) },
];

function floatSign(value: number | null | undefined) {
  if (value == null || value === 0) return undefined;
  return value < 0 ? "neg" : "pos";
}

function signClass(value: string | null | undefined) {
  if (!value) return undefined;
  return value.startsWith("-") ? "neg" : /[1-9]/.test(value) ? "pos" : undefined;
}

export function LeaderboardTable({ rows }: { rows: readonly LeaderboardEntry[] }) {
  const [sort, setSort] = useState<{ column: LeaderboardColumn; direction: SortDirection }>({
    column: "rank",
    direction: "asc",
  });
  const sorted = useMemo(() => sortRows(rows, sort.column, sort.direction), [rows, sort]);
  // Colours follow the rank order of the chart's series (agent id order), so a row and its line match.
  const styleIndex = useMemo(() => {
    const ids = [...rows].map((r) => r.agent_id).sort((a, b) => a - b);
    return new Map(ids.map((id, index) => [id, index]));
  }, [rows]);
  const dark = prefersDark();

  if (rows.length === 0) return <Empty>No agents are racing yet.</Empty>;

  const toggle = (column: LeaderboardColumn) =>
    setSort((current) =>
      current.column === column
        ? { column, direction: current.direction === "asc" ? "desc" : "asc" }
        : { column, direction: column === "rank" || column === "name" ? "asc" : "desc" },
    );

  return (
    <div className="table-scroll" tabIndex={0} aria-label="Leaderboard (scrolls sideways on small screens)">
      <table className="table leaderboard" data-testid="leaderboard">
        <thead>
          <tr>
            {COLUMNS.map((column) => {
              const active = sort.column === column.key;
              return (
                <th
                  key={column.key}
                  className={column.numeric ? "num" : undefined}
                  aria-sort={active ? (sort.direction === "asc" ? "ascending" : "descending") : "none"}
                >
                  <button type="button" className="sort" title={column.title} onClick={() => toggle(column.key)}>
                    {column.label}
                    <span aria-hidden="true">{active ? (sort.direction === "asc" ? " ▲" : " ▼") : ""}</span>
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {sorted.map((row) => {
            const style = seriesStyle(styleIndex.get(row.agent_id) ?? 0, dark);
            return (
              <tr key={row.agent_id} className={row.active ? undefined : "inactive"} data-agent-id={row.agent_id}>
                {COLUMNS.map((column) => (
                  <td key={column.key} className={column.numeric ? "num" : undefined}>
                    {column.key === "name" ? (
                      <span className="swatch" style={{ color: style.color }} aria-hidden="true">
                        {style.marker}{" "}
                      </span>
                    ) : null}
                    {column.render(row)}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
