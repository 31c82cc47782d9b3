import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { renderHook, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";

import { LONG_POLL_S, useRace } from "./queries";

const race = (version: string) => ({
  cycles: 3,
  first_cycle: "2024-01-01T00:00:00Z",
  last_cycle: "2024-01-01T02:00:00Z",
  last_finished_at: "2024-01-01T02:00:01Z",
  version,
});

afterEach(() => vi.unstubAllGlobals());

describe("watching the race", () => {
  it("asks plainly first, then long-polls with the version it has", async () => {
    const asked: string[] = [];
    vi.stubGlobal("fetch", (url: string) => {
      asked.push(url);
      const body = race(asked.length === 1 ? "aaaaaaaaaaaaaaaa" : "bbbbbbbbbbbbbbbb");
      return Promise.resolve(new Response(JSON.stringify(body), { status: 200 }));
    });
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <QueryClientProvider client={client}>{children}</QueryClientProvider>
    );

    const { result, unmount } = renderHook(() => useRace(), { wrapper });

    await waitFor(() => expect(result.current.data?.version).toBe("bbbbbbbbbbbbbbbb"), { timeout: 3_000 });
    expect(asked[0]).toBe("/api/race");
    expect(asked[1]).toBe(`/api/race?wait=${LONG_POLL_S}&since=aaaaaaaaaaaaaaaa`);
    unmount();
    client.clear();
  });

  it("never doubles a long poll that is still held", async () => {
    const asked: string[] = [];
    vi.stubGlobal("fetch", (url: string) => {
      asked.push(url);
      if (asked.length === 1) return Promise.resolve(new Response(JSON.stringify(race("aaaaaaaaaaaaaaaa"))));
      return new Promise<Response>(() => undefined); // held by the server: never answers in this test
    });
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <QueryClientProvider client={client}>{children}</QueryClientProvider>
    );

    const { unmount } = renderHook(() => [useRace(), useRace()], { wrapper });

    await waitFor(() => expect(asked).toHaveLength(2), { timeout: 3_000 });
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // past two refetch intervals
    expect(asked).toHaveLength(2);
    unmount();
    client.clear();
  });
});
