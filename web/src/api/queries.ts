import { keepPreviousData, useQuery } from "@tanstack/react-query";

import {
  apiGet,
  type Agent,
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
 * ETag, so an idle race answers 304). Everything else is keyed by that version and refetched only then. */
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

// A safety net for marks recorded outside a cycle (the equity timer in Azure): conditional, so 304 when idle.
const SLOW_POLL_MS = 60_000;

export function useLeaderboard() {
  const version = useRaceVersion();
  return useQuery({
    queryKey: ["leaderboard", version],
    queryFn: ({ signal }) => apiGet<Leaderboard>("/leaderboard", signal),
    placeholderData: keepPreviousData,
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
  };
}

export function useAgent(agentId: number, version: string) {
  return useQuery({
    queryKey: ["agent", agentId, version],
    queryFn: ({ signal }) => apiGet<Agent>(`/agents/${agentId}`, signal),
    placeholderData: keepPreviousData,
    retry: (count, error) => !("status" in error && error.status === 404) && count < 2,
  });
}

export function useTrades(agentId: number, offset: number, limit: number, version: string) {
  return useQuery({
    queryKey: ["trades", agentId, offset, limit, version],
    queryFn: ({ signal }) => apiGet<TradesPage>(`/agents/${agentId}/trades?limit=${limit}&offset=${offset}`, signal),
    placeholderData: keepPreviousData,
  });
}

export function useDecisions(agentId: number, offset: number, limit: number, version: string) {
  return useQuery({
    queryKey: ["decisions", agentId, offset, limit, version],
    queryFn: ({ signal }) =>
      apiGet<DecisionsPage>(`/agents/${agentId}/decisions?limit=${limit}&offset=${offset}`, signal),
    placeholderData: keepPreviousData,
  });
}

export function usePrices(version: string) {
  return useQuery({
    queryKey: ["prices", version],
    queryFn: ({ signal }) => apiGet<Prices>("/market/prices", signal),
    placeholderData: keepPreviousData,
  });
}

export function useCandles(symbol: string, interval: string, version: string) {
  return useQuery({
    queryKey: ["candles", symbol, interval, version],
    queryFn: ({ signal }) => apiGet<Candles>(`/market/${symbol}/candles?interval=${interval}`, signal),
    placeholderData: keepPreviousData,
    enabled: symbol !== "",
  });
}
