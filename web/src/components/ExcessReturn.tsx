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

/** The excess's 95% bootstrap interval: "−1.13 to +9.31 pp". */
export function interval(excess: Excess): string {
  return `${formatPoints(excess.low).replace(" pp", "")} to ${formatPoints(excess.high)}`;
}

/** "+3.25 pp ≈ not significant" over "95%: −1.13 to +9.31 pp": the excess, the verdict, the interval. */
export function ExcessReturnCell({
  excess,
  withProbability = false,
}: {
  excess: Excess | null | undefined;
  withProbability?: boolean;
}) {
  if (!excess) return <span className="muted">—</span>;
  const sign = excess.value > 0 ? "pos" : excess.value < 0 ? "neg" : undefined;
  const title =
    `Excess total return over ${excess.control_name} on their common cycles, with its 95% stationary-bootstrap ` +
    `interval; it beat the control in ${formatShare(excess.probability_beats, 0)} of the replications.`;
  return (
    <span className="excess" title={title} data-testid="excess">
      <span>
        <span className={sign}>{formatPoints(excess.value)}</span> <SignificanceMarker excess={excess} />
      </span>
      <span className="muted small" data-testid="interval">
        95%: {interval(excess)}
      </span>
      {withProbability ? (
        <span className="muted small">beat it in {formatShare(excess.probability_beats, 0)} of replications</span>
      ) : null}
    </span>
  );
}
