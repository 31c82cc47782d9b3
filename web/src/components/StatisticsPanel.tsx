import type { AgentStatistics, AgentStats } from "../api/client";
import { formatMoney, formatPrice } from "../lib/decimal";
import { formatDuration, formatFraction, formatMs, formatRatio, formatShare } from "../lib/figures";
import { ExcessReturnCell } from "./ExcessReturn";
import { StatisticsNote } from "./StatisticsNote";
import { Empty } from "./States";

interface Figure {
  label: string;
  value: string;
  /** The definition (tooltip); docs/statistics.md has the formula. */
  title: string;
}

function Figures({ title, figures }: { title: string; figures: Figure[] }) {
  return (
    <div className="figures" role="group" aria-label={title}>
      <h3>{title}</h3>
      <dl>
        {figures.map((f) => (
          <div key={f.label} title={f.title}>
            <dt>{f.label}</dt>
            <dd>{f.value}</dd>
          </div>
        ))}
      </dl>
    </div>
  );
}

function performance(s: AgentStatistics): Figure[] {
  const se = s.sharpe_standard_error;
  return [
    { label: "Total return", value: formatFraction(s.total_return), title: "Last equity / first equity − 1." },
    {
      label: "Annualised return",
      value: formatFraction(s.annualised_return),
      title: "(1 + total return) ^ (cycles per year / returns) − 1.",
    },
    {
      label: "Volatility (ann.)",
      value: formatFraction(s.annualised_volatility, { sign: false }),
      title: "Sample standard deviation of per-cycle returns × √(cycles per year).",
    },
    {
      label: "Sharpe",
      value: se == null ? formatRatio(s.sharpe) : `${formatRatio(s.sharpe)} ± ${formatRatio(se)}`,
      title: "Annualised, risk-free 0; ± its standard error under serial correlation (Lo 2002).",
    },
    {
      label: "Deflated Sharpe",
      value: formatShare(s.deflated_sharpe_probability),
      title: "Probability that the true Sharpe is above 0, given how many agents raced (Bailey & López de Prado).",
    },
    { label: "Sortino", value: formatRatio(s.sortino), title: "Mean return / downside deviation, annualised." },
    { label: "Calmar", value: formatRatio(s.calmar), title: "Annualised return / max drawdown." },
    {
      label: "Max drawdown",
      value: formatFraction(s.max_drawdown, { sign: false }),
      title: "Largest fall from a running peak, as a share of the peak.",
    },
    {
      label: "Longest drawdown",
      value: formatDuration(s.max_drawdown_duration),
      title: "Longest time from a peak until equity regained it (or until the last mark).",
    },
    { label: "Turnover", value: `${formatRatio(s.turnover, 1)}×/yr`, title: "Traded notional per year / mean equity." },
    { label: "Exposure", value: formatShare(s.exposure), title: "Share of marks with something invested." },
    {
      label: "Fees / start",
      value: formatFraction(s.fees_share_of_start, { sign: false }),
      title: "Trading fees paid as a share of the starting cash.",
    },
  ];
}

function trades(s: AgentStatistics): Figure[] {
  const t = s.trades;
  return [
    { label: "Round trips", value: String(t.round_trips), title: "Closed lots, matched first-in first-out." },
    { label: "Win rate", value: formatShare(t.win_rate), title: "Share of round trips with positive net P&L." },
    { label: "Profit factor", value: formatRatio(t.profit_factor), title: "Winning P&L / |losing P&L|." },
    { label: "Average win", value: formatMoney(t.average_win), title: "Mean net P&L of winning round trips." },
    { label: "Average loss", value: formatMoney(t.average_loss), title: "Mean net P&L of losing round trips." },
    { label: "Biggest win", value: formatMoney(t.biggest_win), title: "Largest round-trip net P&L." },
    { label: "Biggest loss", value: formatMoney(t.biggest_loss), title: "Most negative round-trip net P&L." },
    { label: "Average holding", value: formatDuration(t.average_holding), title: "Mean time from buy to sale." },
  ];
}

function cost(s: AgentStatistics): Figure[] {
  const c = s.cost;
  return [
    { label: "Inference cost", value: formatMoney(c.inference_cost_usd), title: "Recorded LLM/inference cost." },
    {
      label: "Per decision",
      value: formatPrice(c.cost_per_decision),
      title: "Inference cost / decisions (every digit kept).",
    },
    { label: "Gross return", value: formatFraction(c.gross_total_return), title: "Return before inference cost." },
    { label: "Net return", value: formatFraction(c.net_total_return), title: "Return after inference cost." },
    {
      label: "USD per return point",
      value: formatMoney(c.usd_per_return_point),
      title: "Inference cost per percentage point of gross return (only when the return is positive).",
    },
  ];
}

function discipline(s: AgentStatistics): Figure[] {
  const d = s.discipline;
  const shares = (entries: Record<string, number>) =>
    Object.entries(entries)
      .sort(([, a], [, b]) => b - a)
      .map(([code, share]) => `${code.replace(/_/g, " ")} ${formatShare(share)}`)
      .join(", ") || "none";
  return [
    { label: "Decisions", value: String(d.decisions), title: "Recorded decisions." },
    {
      label: "Parse failures",
      value: formatShare(d.parse_failure_share),
      title: "Share of decisions whose answer could not be read.",
    },
    { label: "Fallback HOLDs", value: shares(d.hold_shares), title: "Share of decisions that fell back to HOLD, by reason." },
    {
      label: "Rejected orders",
      value: shares(d.rejected_order_shares),
      title: "Share of orders asked for that the rules rejected, by reason.",
    },
    {
      label: "Latency",
      value: d.latency_mean_ms == null ? "not measured" : `${formatMs(d.latency_mean_ms)} (p95 ${formatMs(d.latency_p95_ms)})`,
      title: "Mean and 95th percentile of the model call latency.",
    },
  ];
}

function Calibration({ s }: { s: AgentStatistics }) {
  const c = s.calibration;
  return (
    <div className="figures" role="group" aria-label="Calibration">
      <h3>Calibration</h3>
      <p className="small">
        Brier score <strong>{formatRatio(c.brier, 3)}</strong> over {c.scored} scored decisions (a trading decision is
        a hit when its P&amp;L {c.horizon_cycles} cycles later is positive; 0 is perfect, 0.25 is a coin flip).
      </p>
      {c.bins.length === 0 ? (
        <Empty>No decision scored yet.</Empty>
      ) : (
        <div className="table-scroll">
          <table className="table" data-testid="reliability">
            <thead>
              <tr>
                <th>Confidence</th>
                <th className="num">Decisions</th>
                <th className="num" title="Mean stated confidence of the decisions in the bin.">
                  Mean
                </th>
                <th className="num" title="Share of those decisions that were hits.">
                  Hit rate
                </th>
              </tr>
            </thead>
            <tbody>
              {c.bins.map((b) => (
                <tr key={b.low}>
                  <td>
                    {b.low.toFixed(1)}–{b.high.toFixed(1)}
                  </td>
                  <td className="num">{b.count}</td>
                  <td className="num">{formatShare(b.mean_confidence)}</td>
                  <td className="num">{formatShare(b.hit_rate)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function Controls({ s }: { s: AgentStatistics }) {
  if (s.versus_controls.length === 0) return <Empty>No control to compare with.</Empty>;
  return (
    <div className="table-scroll">
      <table className="table" data-testid="versus-controls">
        <thead>
          <tr>
            <th>Control</th>
            <th
              className="wrap"
              title="Excess total return over the control, whether its 95% interval excludes 0, the interval, and the share of bootstrap replications the agent won."
            >
              Excess return and verdict
            </th>
            <th className="num">Paired cycles</th>
          </tr>
        </thead>
        <tbody>
          {s.versus_controls.map((c) => (
            <tr key={c.control_agent_id}>
              <td className="wrap">{c.control_name}</td>
              <td>
                <ExcessReturnCell excess={c} withProbability />
              </td>
              <td className="num">{c.paired_returns}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Every statistic of one agent, as computed on the server after the latest cycle (never in the browser). */
export function StatisticsPanel({ stats }: { stats: AgentStats }) {
  const s = stats.statistics;
  return (
    <section className="card" aria-labelledby="statistics-title" data-testid="statistics">
      <h2 id="statistics-title">Statistics</h2>
      {s ? (
        <>
          <div className="figure-grid">
            <Figures title="Performance" figures={performance(s)} />
            <Figures title="Trades" figures={trades(s)} />
            <Figures title="Cost of thinking" figures={cost(s)} />
            <Figures title="Discipline" figures={discipline(s)} />
          </div>
          <Calibration s={s} />
          <h3>Against the controls</h3>
          <Controls s={s} />
        </>
      ) : null}
      <StatisticsNote status={stats.status} />
    </section>
  );
}
