import type { Leaderboard } from "../api/client";
import { raceVersion } from "../api/queries";
import { useApiStatus } from "../api/status";
import { formatTime } from "../lib/time";

export function RaceClock({ board }: { board: Leaderboard | undefined }) {
  const { outage } = useApiStatus();
  const latest = raceVersion(board);
  const racing = board?.items.filter((r) => r.active).length ?? 0;
  return (
    <div className="race-clock" aria-live="polite">
      <span className={outage ? "live off" : "live on"} data-testid="live-indicator">
        <span className="dot" aria-hidden="true" />
        {outage ? "Offline" : "Live"}
      </span>
      <span>
        Race clock: <strong data-testid="race-clock">{formatTime(latest || null)}</strong>
      </span>
      <span>
        {racing} racing of {board?.items.length ?? 0}
      </span>
    </div>
  );
}
