import { useApiStatus } from "../api/status";

export function ErrorBanner() {
  const { outage, lastSuccessAt } = useApiStatus();
  if (!outage) return null;
  const since = lastSuccessAt ? new Date(lastSuccessAt).toLocaleTimeString() : null;
  return (
    <div className="banner" role="alert" data-testid="api-error-banner">
      <strong>{outage}.</strong>{" "}
      {since ? `Showing the last data received at ${since}; retrying every few seconds.` : "Retrying every few seconds."}
    </div>
  );
}
