import type { StatisticsStatus } from "../api/client";
import { DEFINITIONS_URL } from "../lib/figures";
import { formatTime } from "../lib/time";

/** Which computed set the figures come from (they are computed once per cycle), or why there are none. */
export function StatisticsNote({ status }: { status: StatisticsStatus | null | undefined }) {
  return (
    <p className="muted small" data-testid="statistics-note">
      {status?.note ?? (status?.computed_for ? `Statistics as of the ${formatTime(status.computed_for)} marks.` : null)}{" "}
      Each figure is defined in the{" "}
      <a href={DEFINITIONS_URL} target="_blank" rel="noreferrer">
        API documentation
      </a>{" "}
      and in <span className="mono">{status?.definitions ?? "docs/statistics.md"}</span>; intervals are 95% stationary
      bootstrap intervals of the paired per-cycle returns.
    </p>
  );
}
