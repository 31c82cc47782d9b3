import { useQuery } from "@tanstack/react-query";

import { ApiError, apiGet, type Health } from "../api/client";
import { POLL_MS } from "../api/queries";
import { Loading, QueryError } from "../components/States";

// /api/health answers 503 with the same body when a critical dependency is down: show it, it says why.
async function fetchHealth(signal: AbortSignal): Promise<Health> {
  try {
    return await apiGet<Health>("/health", signal);
  } catch (error) {
    if (error instanceof ApiError && error.status === 503 && error.body && typeof error.body === "object" && "checks" in error.body)
      return error.body as Health;
    throw error;
  }
}

export function HealthPage() {
  const health = useQuery({ queryKey: ["health"], queryFn: ({ signal }) => fetchHealth(signal), refetchInterval: POLL_MS });
  return (
    <>
      <header className="page-header">
        <h1>Health</h1>
        {health.data ? (
          <p>
            Overall: <span className={`health health-${health.data.status}`} data-testid="health-status">{health.data.status}</span>
          </p>
        ) : null}
      </header>
      {health.isPending ? <Loading what="health" /> : null}
      {health.isError && !health.data ? <QueryError error={health.error} what="health" /> : null}
      {health.data ? (
        <section className="card">
          <table className="table" data-testid="health-checks">
            <thead>
              <tr>
                <th>Dependency</th>
                <th>Status</th>
                <th>Details</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(health.data.checks).map(([name, status]) => (
                <tr key={name}>
                  <td className="mono">{name}</td>
                  <td>
                    <span className={`health health-${status}`}>{status}</span>
                  </td>
                  <td className="wrap">{health.data.details?.[name] ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
    </>
  );
}
