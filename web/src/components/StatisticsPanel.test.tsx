import { render, screen, within } from "@testing-library/react";

import type { AgentStats } from "../api/client";
import { ExcessReturnCell } from "./ExcessReturn";
import { StatisticsPanel } from "./StatisticsPanel";

const CONTROL = {
  control_agent_id: 1,
  control_name: "Buy & Hold BTC",
  value: 0.0425,
  low: -0.0123,
  high: 0.0931,
  probability_beats: 0.87,
  significant: false,
  paired_returns: 503,
  block_length: 8,
};

export const STATS: AgentStats = {
  agent_id: 6,
  name: "llama",
  status: {
    computed_for: "2024-03-02T23:00:00Z",
    computed_at: "2024-03-02T23:00:02Z",
    note: null,
    definitions: "docs/statistics.md",
  },
  statistics: {
    observations: 504,
    returns: 503,
    total_return: 0.0525,
    annualised_return: 1.4301,
    annualised_volatility: 0.4123,
    sharpe: 1.8712,
    sortino: -0.5,
    calmar: 9.12,
    max_drawdown: 0.1568,
    max_drawdown_duration: 113 * 3600,
    sharpe_standard_error: 0.91,
    deflated_sharpe_probability: 0.62,
    trades: {
      round_trips: 14,
      win_rate: 0.5714,
      profit_factor: null,
      average_win: "812.40000000",
      average_loss: "-553.12500000",
      biggest_win: "2410.00000000",
      biggest_loss: "-1200.50000000",
      average_holding: 30.5 * 3600,
    },
    turnover: 12.5,
    exposure: 0.83,
    fees_share_of_start: 0.0034,
    cost: {
      inference_cost_usd: "1.23450000",
      cost_per_decision: "0.00244940",
      gross_total_return: 0.0525,
      net_total_return: 0.05248765,
      usd_per_return_point: "0.23514286",
    },
    discipline: {
      decisions: 504,
      parse_failure_share: 0.0119,
      hold_shares: { timeout: 0.004, invalid_output: 0.0119 },
      rejected_order_shares: {},
      latency_mean_ms: 812.5,
      latency_p95_ms: 2012,
    },
    calibration: {
      horizon_cycles: 24,
      scored: 120,
      brier: 0.231,
      bins: [
        { low: 0.5, high: 0.6, count: 70, mean_confidence: 0.55, hit_rate: 0.51 },
        { low: 0.6, high: 0.7, count: 50, mean_confidence: 0.64, hit_rate: 0.6 },
      ],
    },
    versus_controls: [
      CONTROL,
      { ...CONTROL, control_agent_id: 4, control_name: "Always Hold", value: -0.02, low: -0.05, high: -0.001, significant: true },
    ],
  },
};

const figure = (group: string, label: string) =>
  within(within(screen.getByRole("group", { name: group })).getByText(label).closest("div") as HTMLElement)
    .getByRole("definition").textContent;

describe("StatisticsPanel", () => {
  it("shows every section, money from its exact strings and ratios as numbers", () => {
    render(<StatisticsPanel stats={STATS} />);
    expect(figure("Performance", "Total return")).toBe("+5.25%");
    expect(figure("Performance", "Sharpe")).toBe("1.87 ± 0.91");
    expect(figure("Performance", "Sortino")).toBe("−0.50");
    expect(figure("Performance", "Longest drawdown")).toBe("4d 17h");
    expect(figure("Trades", "Average loss")).toBe("−$553.13");
    expect(figure("Trades", "Profit factor")).toBe("—"); // undefined without a losing trade: a dash, not 0
    expect(figure("Trades", "Average holding")).toBe("1d 6h");
    expect(figure("Cost of thinking", "Per decision")).toBe("$0.0024494"); // every digit the API sent
    expect(figure("Cost of thinking", "Net return")).toBe("+5.25%");
    expect(figure("Discipline", "Fallback HOLDs")).toBe("invalid output 1.2%, timeout 0.4%");
    expect(figure("Discipline", "Rejected orders")).toBe("none");
    expect(figure("Discipline", "Latency")).toBe("813 ms (p95 2,012 ms)");
    const bins = within(screen.getByTestId("reliability")).getAllByRole("row");
    expect(bins.map((r) => r.textContent)).toEqual([
      "ConfidenceDecisionsMeanHit rate",
      "0.5–0.67055.0%51.0%",
      "0.6–0.75064.0%60.0%",
    ]);
  });

  it("says against each control whether the difference is distinguishable from luck", () => {
    render(<StatisticsPanel stats={STATS} />);
    const rows = within(screen.getByTestId("versus-controls")).getAllByRole("row").slice(1);
    expect(rows[0]).toHaveTextContent(
      "Buy & Hold BTC+4.25 pp ≈ not significant95%: −1.23 to +9.31 ppbeat it in 87% of replications503",
    );
    expect(rows[1]).toHaveTextContent("Always Hold−2.00 pp ▼ trails it (95%)95%: −5.00 to −0.10 pp");
  });

  it("shows the note instead of figures when none are computed yet", () => {
    const note = "No statistics yet: they are computed once the first cycle's equity marks land.";
    render(<StatisticsPanel stats={{ ...STATS, statistics: null, status: { ...STATS.status, note } }} />);
    expect(screen.queryByRole("group", { name: "Performance" })).toBeNull();
    expect(screen.getByTestId("statistics-note")).toHaveTextContent(note);
    expect(screen.getByRole("link", { name: "API documentation" })).toHaveAttribute("href", "/api/docs");
  });
});

describe("ExcessReturnCell", () => {
  it("marks a significant lead in words, a dash when there is no comparison", () => {
    const { rerender } = render(<ExcessReturnCell excess={{ ...CONTROL, low: 0.001, significant: true }} />);
    expect(screen.getByTestId("excess")).toHaveTextContent("+4.25 pp ▲ beats it (95%)95%: +0.10 to +9.31 pp");
    expect(screen.getByTestId("excess")).toHaveAttribute("title", expect.stringContaining("87% of the replications"));
    rerender(<ExcessReturnCell excess={null} />);
    expect(screen.queryByTestId("excess")).toBeNull();
    expect(screen.getByText("—")).toBeInTheDocument();
  });
});
