import { keepPreviousData, type Query, type QueryClient, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";

import {
  apiGet,
  type Agent,
  type AgentStats,
  type Candles,
  type DecisionsPage,
  type EquityCurves,
  type EquitySeries,
  type Leaderboard,
  type Prices,
  type Race,
  type TradesPage,
} from "./client";

export const POLL_MS = 5_000;
/** How long the API may hold a /race request while the race stands still (GET /api/race?wait=&since=). */
export const LONG_POLL_S = 30;
const NEXT_POLL_MS = 1_000;

/** The one thing watched all the time: a tiny document whose `version` moves when a cycle lands or portfolios
 * are marked. Watched by long polling: once the version is known, the API holds each request until it moves
 * (answered within a second) or LONG_POLL_S pass (a bodiless 304), so an idle dashboard makes two requests a
 * minute. Everything else is refetched when the version moves (useLiveRefresh), never polled. */
export function raceQuery(client: QueryClient) {
  return {
    queryKey: ["race"],
    queryFn: ({ signal }: { signal: AbortSignal }) => {
      const known = client.getQueryData<Race>(["race"])?.version;
      return apiGet<Race>(known ? `/race?wait=${LONG_POLL_S}&since=${known}` : "/race", signal);
    },
    // The next long poll starts right after one returns (an in-flight one is never doubled); after an error,
    // every POLL_MS.
    refetchInterval: (query: Query<Race, Error, Race, readonly unknown[]>) =>
      query.state.status === "error" ? POLL_MS : NEXT_POLL_MS,
    staleTime: 0,
  };
}

export function useRace() {
  return useQuery(raceQuery(useQueryClient()));
}

export function useRaceVersion(): string {
  return useRace().data?.version ?? "";
}

/** Mounted once (App): when the race version moves, every loaded query but /race itself is refetched (only
 * the ones on screen go to the network). Queries are not keyed by the version, so a first load never waits
 * for /race; an agent's own curve is (it is fetched per cycle anyway, and a range switch keeps it). */
export function useLiveRefresh() {
  const version = useRaceVersion();
  const client = useQueryClient();
  const seen = useRef(version);
  useEffect(() => {
    if (seen.current && seen.current !== version)
      void client.invalidateQueries({ predicate: (query) => !["race", "equity"].includes(String(query.queryKey[0])) });
    seen.current = version;
  }, [client, version]);
}

// No poll of its own: the race version moves when marks land too (the equity timer runs after the cycle).
export function useLeaderboard() {
  return useQuery({
    queryKey: ["leaderboard"],
    queryFn: ({ signal }) => apiGet<Leaderboard>("/leaderboard", signal),
  });
}

/** Every agent's curve in one request (the race page's chart). Not keyed by the race version, so it starts at
 * navigation beside /race and /leaderboard; useLiveRefresh refetches it when the version moves. */
export function useEquityCurves(start: string | null, enabled: boolean) {
  const query = start ? `?start=${encodeURIComponent(start)}` : "";
  return useQuery({
    queryKey: ["curves", start],
    queryFn: ({ signal }) => apiGet<EquityCurves>(`/equity${query}`, signal),
    placeholderData: keepPreviousData,
    enabled,
  });
}

export function equityQuery(agentId: number, start: string | null, version: string) {
  const query = start ? `?start=${encodeURIComponent(start)}` : "";
  return {
    queryKey: ["equity", agentId, start, version],
    queryFn: ({ signal }: { signal: AbortSignal }) =>
      apiGet<EquitySeries>(`/agents/${agentId}/equity${query}`, signal),
    placeholderData: keepPreviousData,
    staleTime: Infinity,
    enabled: version !== "",
  };
}

export function useAgent(agentId: number) {
  return useQuery({
    queryKey: ["agent", agentId],
    queryFn: ({ signal }) => apiGet<Agent>(`/agents/${agentId}`, signal),
    placeholderData: keepPreviousData,
    retry: (count, error) => !("status" in error && error.status === 404) && count < 2,
  });
}

/** Computed once per cycle on the server and stored; refetched when the race version moves (useLiveRefresh). */
export function useAgentStats(agentId: number) {
  return useQuery({
    queryKey: ["stats", agentId],
    queryFn: ({ signal }) => apiGet<AgentStats>(`/agents/${agentId}/stats`, signal),
    placeholderData: keepPreviousData,
    retry: (count, error) => !("status" in error && error.status === 404) && count < 2,
  });
}

export function useTrades(agentId: number, offset: number, limit: number) {
  return useQuery({
    queryKey: ["trades", agentId, offset, limit],
    queryFn: ({ signal }) => apiGet<TradesPage>(`/agents/${agentId}/trades?limit=${limit}&offset=${offset}`, signal),
    placeholderData: keepPreviousData,
  });
}

export function useDecisions(agentId: number, offset: number, limit: number) {
  return useQuery({
    queryKey: ["decisions", agentId, offset, limit],
    queryFn: ({ signal }) =>
      apiGet<DecisionsPage>(`/agents/${agentId}/decisions?limit=${limit}&offset=${offset}`, signal),
    placeholderData: keepPreviousData,
  });
}

export function usePrices() {
  return useQuery({
    queryKey: ["prices"],
    queryFn: ({ signal }) => apiGet<Prices>("/market/prices", signal),
    placeholderData: keepPreviousData,
  });
}

export function useCandles(symbol: string, interval: string) {
  return useQuery({
    queryKey: ["candles", symbol, interval],
    queryFn: ({ signal }) => apiGet<Candles>(`/market/${symbol}/candles?interval=${interval}`, signal),
    placeholderData: keepPreviousData,
    enabled: symbol !== "",
  });
}
