import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";

import {
  apiGet,
  type Agent,
  type AgentStats,
  type Candles,
  type DecisionsPage,
  type EquitySeries,
  type Leaderboard,
  type Prices,
  type Race,
  type TradesPage,
} from "./client";

export const POLL_MS = 5_000;

/** The one thing polled every few seconds: a tiny document whose `version` moves when a cycle lands (and an
 * ETag, so an idle race answers 304). Everything else is refetched when that version moves (useLiveRefresh),
 * once per cycle, never polled. */
export function useRace() {
  return useQuery({
    queryKey: ["race"],
    queryFn: ({ signal }) => apiGet<Race>("/race", signal),
    refetchInterval: POLL_MS,
    staleTime: 0,
  });
}

export function useRaceVersion(): string {
  return useRace().data?.version ?? "";
}

/** Mounted once (App): when the race version moves, every loaded query but /race itself is refetched (only
 * the ones on screen go to the network). Queries are not keyed by the version, so a first load never waits
 * for /race; the equity curves are (they are fetched per cycle anyway, and a range switch keeps them). */
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

// A safety net for marks recorded outside a cycle (the equity timer in Azure): conditional, so 304 when idle.
const SLOW_POLL_MS = 60_000;

export function useLeaderboard() {
  return useQuery({
    queryKey: ["leaderboard"],
    queryFn: ({ signal }) => apiGet<Leaderboard>("/leaderboard", signal),
    refetchInterval: SLOW_POLL_MS,
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
