import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";

import { ApiError } from "../api/client";
import {
  equityQuery,
  useAgent,
  useAgentStats,
  useDecisions,
  usePrices,
  useRaceVersion,
  useTrades,
} from "../api/queries";
import { DecisionLog } from "../components/DecisionLog";
import { Pager } from "../components/Pager";
import { StatisticsPanel } from "../components/StatisticsPanel";
import { Empty, Loading, NotFound, QueryError } from "../components/States";
import { TimeChart } from "../components/TimeChart";
import { formatDecimal, formatInt, formatMoney, formatPct, formatPrice, multiplyDecimal } from "../lib/decimal";
import { alignSeries } from "../lib/series";
import { formatTime } from "../lib/time";

const PAGE = 20;

export function AgentPage() {
  const { agentId: raw } = useParams();
  const agentId = Number(raw);
  const valid = Number.isInteger(agentId) && agentId >= 1 && agentId <= 2 ** 31 - 1;
  if (!valid) return <NotFound what={`There is no agent “${raw ?? ""}”.`} />;
  return <AgentView agentId={agentId} />;
}

function AgentView({ agentId }: { agentId: number }) {
  const version = useRaceVersion();
  const agent = useAgent(agentId);
  const [params, setParams] = useSearchParams();
  const tradesOffset = Math.max(0, Number(params.get("trades") ?? 0) || 0);
  const decisionsOffset = Math.max(0, Number(params.get("decisions") ?? 0) || 0);
  const curve = useQuery(equityQuery(agentId, null, version));
  const trades = useTrades(agentId, tradesOffset, PAGE);
  const decisions = useDecisions(agentId, decisionsOffset, PAGE);
  const prices = usePrices();
  const stats = useAgentStats(agentId);

  const charts = useMemo(() => {
    const equity = alignSeries([curve.data]);
    const drawdown = alignSeries([curve.data], (p) => `-${p.drawdown_pct}`.replace("--", ""));
    return { equity, drawdown };
  }, [curve.data]);

  const setOffset = (key: string) => (offset: number) =>
    setParams((current) => {
      const next = new URLSearchParams(current);
      if (offset === 0) next.delete(key);
      else next.set(key, String(offset));
      return next;
    });

  if (agent.error instanceof ApiError && agent.error.status === 404)
    return <NotFound what={`There is no agent with id ${agentId}.`} />;
  if (agent.isPending) return <Loading what="the agent" />;
  if (!agent.data) return <QueryError error={agent.error} what="the agent" />;
  const a = agent.data;
  const priceOf = new Map((prices.data?.items ?? []).map((p) => [p.symbol, p]));
  const positions = Object.entries(a.positions).filter(([, qty]) => /[1-9]/.test(qty));

  return (
    <>
      <header className="page-header">
        <p className="crumbs">
          <Link to="/">Race</Link> / {a.name}
        </p>
        <h1>
          {a.name} {a.active ? null : <span className="badge-inactive">inactive</span>}
        </h1>
        <p className="muted">
          {a.provider} · <span className="mono">{a.model}</span> · {a.strategy}
          {a.inactive_reason ? ` · ${a.inactive_reason}` : ""}
        </p>
      </header>
      <section className="stats card" aria-label="Totals">
        <Stat label="Equity" value={formatMoney(a.equity)} />
        <Stat label="Return" value={formatPct(a.return_pct)} />
        <Stat label="Max drawdown" value={formatPct(a.max_drawdown_pct, false)} />
        <Stat label="Cash" value={formatMoney(a.cash)} />
        <Stat label="Trades" value={formatInt(a.trades)} />
        <Stat label="Fees" value={formatMoney(a.fees_paid)} />
        <Stat label="Tokens" value={`${formatInt(a.prompt_tokens)} / ${formatInt(a.completion_tokens)}`} />
        <Stat label="LLM cost" value={formatMoney(a.llm_cost_usd)} />
        <Stat label="Marked at" value={formatTime(a.equity_at)} />
      </section>
      <section className="card" aria-label="Equity and drawdown">
        {charts.equity.x.length === 0 ? (
          <Empty>No marks yet.</Empty>
        ) : (
          <>
            <TimeChart
              title="Equity (USD)"
              testId="agent-equity-chart"
              x={charts.equity.x}
              series={[{ label: a.name, color: "#0072B2", dash: [], values: charts.equity.values[0] ?? [] }]}
              valuePrefix="$"
              height={260}
            />
            <TimeChart
              title="Drawdown (%)"
              testId="agent-drawdown-chart"
              x={charts.drawdown.x}
              series={[
                {
                  label: "Drawdown",
                  color: "#D55E00",
                  dash: [],
                  fill: "rgba(213,94,0,0.15)",
                  values: charts.drawdown.values[0] ?? [],
                },
              ]}
              valueSuffix="%"
              height={160}
            />
          </>
        )}
      </section>
      {stats.data ? <StatisticsPanel stats={stats.data} /> : null}
      {stats.isError && !stats.data ? <QueryError error={stats.error} what="the statistics" /> : null}
      <section className="card" aria-labelledby="positions-title">
        <h2 id="positions-title">Positions</h2>
        {positions.length === 0 ? (
          <Empty>All cash: no open positions.</Empty>
        ) : (
          <div className="table-scroll">
            <table className="table">
              <thead>
                <tr>
                  <th>Asset</th>
                  <th className="num">Quantity</th>
                  <th className="num">Price</th>
                  <th className="num">Marked value</th>
                </tr>
              </thead>
              <tbody>
                {positions.map(([symbol, qty]) => {
                  const price = priceOf.get(symbol);
                  return (
                    <tr key={symbol}>
                      <td>{symbol}</td>
                      <td className="num">{formatDecimal(qty)}</td>
                      <td className="num">{price ? formatPrice(price.price) : "—"}</td>
                      <td className="num">{price ? formatMoney(multiplyDecimal(qty, price.price)) : "—"}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section className="card" aria-labelledby="trades-title">
        <h2 id="trades-title">Trades</h2>
        {trades.isError && !trades.data ? <QueryError error={trades.error} what="trades" /> : null}
        {trades.data && trades.data.items.length === 0 ? <Empty>No trades yet.</Empty> : null}
        {trades.data && trades.data.items.length > 0 ? (
          <>
            <div className="table-scroll">
              <table className="table" data-testid="trades">
                <thead>
                  <tr>
                    <th>Cycle</th>
                    <th>Side</th>
                    <th>Asset</th>
                    <th className="num">Quantity</th>
                    <th className="num">Price</th>
                    <th className="num">Notional</th>
                    <th className="num">Fee</th>
                  </tr>
                </thead>
                <tbody>
                  {trades.data.items.map((t) => (
                    <tr key={t.id}>
                      <td>{formatTime(t.cycle_time)}</td>
                      <td className={t.side.toLowerCase() === "buy" ? "pos" : "neg"}>{t.side.toUpperCase()}</td>
                      <td>{t.symbol}</td>
                      <td className="num">{formatDecimal(t.quantity)}</td>
                      <td className="num">{formatPrice(t.price)}</td>
                      <td className="num">{formatMoney(t.notional)}</td>
                      <td className="num">{formatDecimal(t.fee, { prefix: "$" })}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager label="Trades" total={trades.data.total} offset={tradesOffset} limit={PAGE} onChange={setOffset("trades")} />
          </>
        ) : null}
      </section>
      <section className="card" aria-labelledby="decisions-title">
        <h2 id="decisions-title">Decisions</h2>
        {decisions.isError && !decisions.data ? <QueryError error={decisions.error} what="decisions" /> : null}
        {decisions.data ? (
          <>
            <DecisionLog decisions={decisions.data.items} />
            <Pager
              label="Decisions"
              total={decisions.data.total}
              offset={decisionsOffset}
              limit={PAGE}
              onChange={setOffset("decisions")}
            />
          </>
        ) : null}
      </section>
    </>
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div className="stat">
      <div className="muted small">{label}</div>
      <div className="stat-value">{value}</div>
    </div>
  );
}
