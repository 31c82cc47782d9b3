import type { components } from "./schema";

export type Schemas = components["schemas"];
export type Race = Schemas["RacePublic"];
export type Leaderboard = Schemas["LeaderboardPublic"];
export type LeaderboardEntry = Schemas["LeaderboardEntryPublic"];
export type Agent = Schemas["AgentPublic"];
export type EquitySeries = Schemas["EquitySeriesPublic"];
export type EquityCurves = Schemas["EquityCurvesPublic"];
export type TradesPage = Schemas["TradesPagePublic"];
export type DecisionsPage = Schemas["DecisionsPagePublic"];
export type Decision = Schemas["DecisionPublic"];
export type Prices = Schemas["PricesPublic"];
export type Candles = Schemas["CandlesPublic"];
export type Health = Schemas["HealthPublic"];
export type AgentStats = Schemas["AgentStatsPublic"];
export type AgentStatistics = Schemas["AgentStatisticsPublic"];
export type ExcessReturn = Schemas["ExcessReturnPublic"];
export type StatisticsStatus = Schemas["StatisticsStatusPublic"];

/** Where the API lives: same origin locally (`/api`), the Function App's URL on Static Web Apps. */
export const API_BASE = (import.meta.env.VITE_API_URL ?? "").replace(/\/$/, "");

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The API answered but cannot serve (5xx), or did not answer at all (status 0). */
  get isOutage(): boolean {
    return this.status === 0 || this.status >= 500;
  }
}

// The server sends an ETag and `Cache-Control: no-cache`: the browser revalidates with If-None-Match, an
// unchanged resource costs a 304 with no body, and the cached JSON is handed back here.
export async function apiGet<T>(path: string, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${API_BASE}/api${path}`, { signal, headers: { Accept: "application/json" } });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, "The API is unreachable");
  }
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const message =
      (body as { error?: { message?: string } } | null)?.error?.message ?? `HTTP ${response.status}`;
    throw new ApiError(response.status, message, body);
  }
  return body as T;
}
