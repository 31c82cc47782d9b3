import { keepPreviousData, useQuery } from "@tanstack/react-query";

import {
  apiGet,
  type Agent,
  type Candles,
  type DecisionsPage,
  type EquitySeries,
  type Leaderboard,
  type Prices,
  type TradesPage,
} from "./client";

export const POLL_MS = 5_000;

export function useLeaderboard() {
  return useQuery({
    queryKey: ["leaderboard"],
    queryFn: ({ signal }) => apiGet<Leaderboard>("/leaderboard", signal),
    refetchInterval: POLL_MS,
  });
}

/** The latest mark time on the board: it moves exactly when a cycle lands, so it keys everything else. */
export function raceVersion(board: Leaderboard | undefined): string {
  let latest = "";
  for (const row of board?.items ?? []) if (row.equity_at && row.equity_at > latest) latest = row.equity_at;
  return latest;
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
