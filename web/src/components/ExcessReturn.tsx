import type { ExcessReturn as Excess } from "../api/client";
import { formatPoints, formatShare } from "../lib/figures";

/** Whether a lead over a control is distinguishable from zero: in words and in shape, never by colour alone. */
export function SignificanceMarker({ excess }: { excess: Excess }) {
  if (!excess.significant)
    return (
      <span className="sig sig-no" title="The 95% interval includes 0: not distinguishable from luck.">
        ≈ not significant
      </span>
    );
  const ahead = excess.value > 0;
  return (
    <span className={`sig ${ahead ? "sig-ahead" : "sig-behind"}`} title="The 95% interval excludes 0.">
      {ahead ? "▲ beats it" : "▼ trails it"} (95%)
    </span>
  );
}

/** "+3.25 pp [−1.13, +9.31] ≈ not significant": the excess, its 95% bootstrap interval, and the verdict. */
export function ExcessReturnCell({ excess }: { excess: Excess | null | undefined }) {
  if (!excess) return <span className="muted">—</span>;
  const sign = excess.value > 0 ? "pos" : excess.value < 0 ? "neg" : undefined;
  const title =
    `Excess total return over ${excess.control_name} on their common cycles, with its 95% stationary-bootstrap ` +
    `interval; it beat the control in ${formatShare(excess.probability_beats, 0)} of the replications.`;
  return (
    <span className="excess" title={title} data-testid="excess">
      <span className={sign}>{formatPoints(excess.value)}</span>{" "}
      <span className="muted small interval">
        [{formatPoints(excess.low)}, {formatPoints(excess.high)}]
      </span>{" "}
      <SignificanceMarker excess={excess} />
    </span>
  );
}
