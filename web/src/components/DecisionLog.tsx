import type { Decision } from "../api/client";
import { formatDecimal, formatInt, formatMoney } from "../lib/decimal";
import { formatTime } from "../lib/time";
import { Empty } from "./States";

function describeOrder(order: Record<string, unknown>): string {
  const side = String(order.side ?? "?").toUpperCase();
  const symbol = String(order.symbol ?? "?");
  const quantity = order.quantity != null ? formatDecimal(String(order.quantity)) : null;
  const notional = order.notional != null ? formatMoney(String(order.notional)) : null;
  const rest = Object.entries(order)
    .filter(([key, value]) => value != null && !["side", "symbol", "quantity", "notional"].includes(key))
    .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
  return [`${side} ${symbol}`, quantity && `qty ${quantity}`, notional && notional, ...rest].filter(Boolean).join(" · ");
}

function describeRejection(rejection: Record<string, unknown>): string {
  const reason = rejection.reason ?? rejection.message ?? rejection.code;
  const order = rejection.order as Record<string, unknown> | undefined;
  const what = order ? describeOrder(order) : Object.entries(rejection).filter(([k]) => k !== "reason").map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ");
  return `${what}${reason ? ` — ${String(reason)}` : ""}`;
}

export function DecisionLog({ decisions }: { decisions: readonly Decision[] }) {
  if (decisions.length === 0) return <Empty>No decisions yet.</Empty>;
  return (
    <ol className="decision-log" data-testid="decision-log">
      {decisions.map((d) => (
        <li key={d.id} className={`decision status-${d.status}`}>
          <header>
            <time dateTime={d.cycle_time}>{formatTime(d.cycle_time)}</time>
            <span className="status">{d.status}</span>
            {d.confidence != null ? <span>confidence {d.confidence.toFixed(2)}</span> : null}
            <span>{d.trades} trade{d.trades === 1 ? "" : "s"}</span>
          </header>
          <p className="reasoning" data-testid="reasoning">
            {d.reasoning || <span className="muted">(no reasoning given)</span>}
          </p>
          {d.hold_reason ? (
            <p>
              <strong>Hold:</strong> <span className="mono">{d.hold_reason}</span>
            </p>
          ) : null}
          {d.orders.length > 0 ? (
            <div>
              <strong>Orders</strong>
              <ul>
                {d.orders.map((order, i) => (
                  <li key={i}>{describeOrder(order)}</li>
                ))}
              </ul>
            </div>
          ) : null}
          {d.rejections.length > 0 ? (
            <div className="rejections">
              <strong>Rejected</strong>
              <ul>
                {d.rejections.map((rejection, i) => (
                  <li key={i}>{describeRejection(rejection)}</li>
                ))}
              </ul>
            </div>
          ) : null}
          <dl className="facts">
            <div>
              <dt>Latency</dt>
              <dd>{d.latency_ms != null ? `${d.latency_ms.toFixed(0)} ms` : "—"}</dd>
            </div>
            <div>
              <dt>Tokens</dt>
              <dd>
              {d.prompt_tokens != null || d.completion_tokens != null
                ? `${formatInt(d.prompt_tokens ?? 0)} in / ${formatInt(d.completion_tokens ?? 0)} out`
                : "—"}
            </dd>
            </div>
            <div>
              <dt>Cost</dt>
              <dd>{d.cost_usd != null ? formatDecimal(d.cost_usd, { prefix: "$" }) : "—"}</dd>
            </div>
            <div>
              <dt>Data age</dt>
              <dd>{d.data_staleness_seconds != null ? `${formatInt(d.data_staleness_seconds)} s` : "—"}</dd>
            </div>
            <div>
              <dt>Snapshot</dt>
              <dd className="mono hash" title={d.snapshot_sha256}>
              {d.snapshot_sha256.slice(0, 12)}…
            </dd>
            </div>
            <div>
              <dt>Decided</dt>
              <dd>{formatTime(d.decided_at)}</dd>
            </div>
          </dl>
        </li>
      ))}
    </ol>
  );
}
