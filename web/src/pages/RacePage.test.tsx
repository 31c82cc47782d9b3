import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";

import { trackApiStatus } from "../api/status";
import { ErrorBanner } from "../components/ErrorBanner";
import { AgentPage } from "./AgentPage";
import { RacePage } from "./RacePage";

function renderAt(path: string) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const untrack = trackApiStatus(client.getQueryCache());
  const view = render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]} future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
        <ErrorBanner />
        <Routes>
          <Route path="/" element={<RacePage />} />
          <Route path="/agents/:agentId" element={<AgentPage />} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
  return { ...view, untrack };
}

const json = (status: number, body: unknown) =>
  Promise.resolve(new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } }));

afterEach(() => vi.unstubAllGlobals());

describe("error and empty states", () => {
  it("shows the outage banner when the API answers 503", async () => {
    vi.stubGlobal("fetch", () => json(503, { error: { code: "unavailable", message: "database unavailable" } }));
    const { untrack } = renderAt("/");
    expect(await screen.findByTestId("api-error-banner")).toHaveTextContent("503");
    expect(screen.getByText(/Could not load the leaderboard/)).toBeInTheDocument();
    untrack();
  });

  it("shows the outage banner when the API is unreachable", async () => {
    vi.stubGlobal("fetch", () => Promise.reject(new TypeError("Failed to fetch")));
    const { untrack } = renderAt("/");
    expect(await screen.findByTestId("api-error-banner")).toHaveTextContent("unreachable");
    untrack();
  });

  it("says the race has not started when there are no agents", async () => {
    vi.stubGlobal("fetch", (url: string) =>
      url.endsWith("/race")
        ? json(200, { cycles: 0, first_cycle: null, last_cycle: null, last_finished_at: null, version: "v0" })
        : json(200, { starting_cash: "100000", items: [] }),
    );
    const { untrack } = renderAt("/");
    expect(await screen.findByText(/No agents are racing yet/)).toBeInTheDocument();
    expect(screen.getByText(/No marks yet/)).toBeInTheDocument();
    expect(screen.queryByTestId("api-error-banner")).toBeNull();
    untrack();
  });

  it("shows not found for an unknown agent", async () => {
    vi.stubGlobal("fetch", (url: string) =>
      url.endsWith("/leaderboard")
        ? json(200, { starting_cash: "100000", items: [] })
        : json(404, { error: { code: "not_found", message: "agent 42 not found" } }),
    );
    const { untrack } = renderAt("/agents/42");
    expect(await screen.findByTestId("not-found")).toHaveTextContent("id 42");
    untrack();
  });

  it("shows not found for a malformed agent id without asking the API", () => {
    const fetch = vi.fn(() => json(200, { starting_cash: "100000", items: [] }));
    vi.stubGlobal("fetch", fetch);
    const { untrack } = renderAt("/agents/abc");
    expect(screen.getByTestId("not-found")).toBeInTheDocument();
    untrack();
  });
});
