import { fireEvent, render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";

import type { LeaderboardEntry } from "../api/client";
import { LeaderboardTable } from "./LeaderboardTable";

function row(overrides: Partial<LeaderboardEntry>): LeaderboardEntry {
  return {
    rank: 1,
    agent_id: 1,
    name: "Agent",
    provider: "baseline",
    model: "m",
    active: true,
    equity: "100000.00000000",
    equity_at: "2024-03-01T00:00:00Z",
    return_pct: "0.00000000",
    max_drawdown_pct: "0.00000000",
    trades: 0,
    fees_paid: "0.00000000",
    prompt_tokens: 0,
    completion_tokens: 0,
    llm_cost_usd: "0.00000000",
    ...overrides,
  };
}

const ROWS = [
  row({ rank: 1, agent_id: 1, name: "Alpha", equity: "100000.00000002", return_pct: "0.00000002", trades: 3 }),
  row({ rank: 2, agent_id: 2, name: "Beta", equity: "100000.00000001", return_pct: "0.00000001", trades: 10 }),
  row({ rank: 3, agent_id: 3, name: "Gamma", equity: null, return_pct: null, trades: 1, active: false }),
];

const names = () =>
  within(screen.getByTestId("leaderboard"))
    .getAllByRole("link")
    .map((a) => a.textContent);

function renderTable(rows = ROWS) {
  return render(
    <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
      <LeaderboardTable rows={rows} />
    </MemoryRouter>,
  );
}

describe("LeaderboardTable", () => {
  it("shows every column the API serves, amounts from the exact strings", () => {
    renderTable();
    const headers = ["#", "Agent", "Equity", "Return", "vs Buy & Hold BTC", "Sharpe", "Max DD", "Win rate", "Net return", "Trades", "Fees", "Provider", "Model", "Status", "Prompt tok", "Compl. tok", "LLM cost", "Marked at"];
    // In this order: what a reader compares first comes right after the agent.
    expect(screen.getAllByRole("columnheader").map((th) => th.textContent?.replace(/[ ▲▼]+$/, ""))).toEqual(headers);
    expect(screen.getAllByText("$100,000.00")).toHaveLength(2);
    expect(screen.getByText("inactive")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Alpha" })).toHaveAttribute("href", "/agents/1");
  });

  it("sorts by a column, both ways, with missing values last", () => {
    renderTable();
    expect(names()).toEqual(["Alpha", "Beta", "Gamma"]);
    fireEvent.click(screen.getByRole("button", { name: /^Trades/ }));
    expect(names()).toEqual(["Beta", "Alpha", "Gamma"]);
    fireEvent.click(screen.getByRole("button", { name: /^Trades/ }));
    expect(names()).toEqual(["Gamma", "Alpha", "Beta"]);
    // Decimal columns compare exactly: these equities differ only in the 8th decimal.
    fireEvent.click(screen.getByRole("button", { name: /^Equity/ }));
    expect(names()).toEqual(["Alpha", "Beta", "Gamma"]);
    fireEvent.click(screen.getByRole("button", { name: /^Equity/ }));
    expect(names()).toEqual(["Beta", "Alpha", "Gamma"]);
    expect(screen.getByRole("columnheader", { name: /Equity/ })).toHaveAttribute("aria-sort", "ascending");
  });

  it("shows the headline statistics with the excess over buy-and-hold, its interval and whether it is significant", () => {
    const excess = {
      control_agent_id: 9,
      control_name: "Buy & Hold BTC",
      value: 0.0325,
      low: 0.004,
      high: 0.0612,
      probability_beats: 0.99,
      significant: true,
    };
    renderTable([
      row({ agent_id: 1, name: "Alpha", sharpe: 1.8712, win_rate: 0.5714, net_return: -0.0125, excess_over_buy_and_hold: excess }),
      row({ rank: 2, agent_id: 2, name: "Beta", sharpe: null, excess_over_buy_and_hold: { ...excess, value: 0.05, low: -0.01, significant: false } }),
      row({ rank: 3, agent_id: 3, name: "Gamma" }),
    ]);
    const alpha = screen.getByRole("link", { name: "Alpha" }).closest("tr") as HTMLElement;
    expect(alpha).toHaveTextContent("1.87");
    expect(alpha).toHaveTextContent("57.1%");
    expect(within(alpha).getByText("−1.25%")).toHaveClass("neg");
    expect(within(alpha).getByTestId("excess")).toHaveTextContent("+3.25 pp ▲ beats it (95%)95%: +0.40 to +6.12 pp");
    const beta = screen.getByRole("link", { name: "Beta" }).closest("tr") as HTMLElement;
    expect(within(beta).getByTestId("excess")).toHaveTextContent("≈ not significant");
    expect(screen.getByRole("button", { name: /^Sharpe/ })).toHaveAttribute("title", expect.stringMatching(/Annualised/));
    // Sorting the excess column sorts by its point estimate, missing comparisons last.
    fireEvent.click(screen.getByRole("button", { name: /^vs Buy & Hold BTC/ }));
    expect(names()).toEqual(["Beta", "Alpha", "Gamma"]);
  });

  it("says so when nobody races yet", () => {
    renderTable([]);
    expect(screen.getByText(/No agents are racing yet/)).toBeInTheDocument();
  });
});
