import type { Leaderboard, Race } from "../api/client";
import { useApiStatus } from "../api/status";
import { formatInt } from "../lib/decimal";
import { formatTime } from "../lib/time";

export function RaceClock({ race, board }: { race: Race | undefined; board: Leaderboard | undefined }) {
  const { outage } = useApiStatus();
  const racing = board?.items.filter((r) => r.active).length ?? 0;
  return (
    <div className="race-clock" aria-live="polite">
      <span className={outage ? "live off" : "live on"} data-testid="live-indicator">
        <span className="dot" aria-hidden="true" />
        {outage ? "Offline" : "Live"}
      </span>
      <span>
        Race clock: <strong data-testid="race-clock">{formatTime(race?.last_cycle)}</strong>
      </span>
      <span>
        Cycle <strong data-testid="cycle-count">{formatInt(race?.cycles)}</strong>
      </span>
      <span>
        {racing} racing of {board?.items.length ?? 0}
      </span>
    </div>
  );
}
