// Statistics arrive as JSON numbers (ratios, fractions, seconds): they are measurements, not money, so they
// are formatted as numbers. Money in the statistics (average win, inference cost) stays a decimal string and
// goes through lib/decimal like every other amount.

const DASH = "—";

function finite(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function signed(text: string, value: number, withSign: boolean): string {
  if (value < 0) return `−${text.replace(/^-/, "")}`;
  return withSign && value > 0 ? `+${text}` : text;
}

/** A fraction as a percentage: 0.0525 -> "+5.25%". */
export function formatFraction(value: number | null | undefined, { digits = 2, sign = true } = {}): string {
  if (!finite(value)) return DASH;
  const pct = value * 100;
  const text = Math.abs(pct).toFixed(digits);
  return signed(`${text}%`, Number(pct.toFixed(digits)), sign);
}

/** A share (0..1) as a percentage without a sign: 0.5714 -> "57.1%". */
export const formatShare = (value: number | null | undefined, digits = 1) =>
  formatFraction(value, { digits, sign: false });

/** A difference of two returns in percentage points: 0.0325 -> "+3.25 pp". */
export function formatPoints(value: number | null | undefined, digits = 2): string {
  if (!finite(value)) return DASH;
  const pp = value * 100;
  return signed(`${Math.abs(pp).toFixed(digits)} pp`, Number(pp.toFixed(digits)), true);
}

/** A ratio (Sharpe, Sortino, profit factor): 1.8712 -> "1.87". */
export function formatRatio(value: number | null | undefined, digits = 2): string {
  if (!finite(value)) return DASH;
  return signed(Math.abs(value).toFixed(digits), Number(value.toFixed(digits)), false);
}

/** Seconds as days and hours: 406800 -> "4d 17h"; under a day -> "5h 30m". */
export function formatDuration(seconds: number | null | undefined): string {
  if (!finite(seconds)) return DASH;
  const minutes = Math.round(seconds / 60);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  if (days > 0) return `${days}d ${hours}h`;
  return `${hours}h ${minutes % 60}m`;
}

export function formatMs(value: number | null | undefined): string {
  return finite(value) ? `${Math.round(value).toLocaleString("en-US")} ms` : DASH;
}

/** Where the figures are defined: the API's own docs (every field's description) and docs/statistics.md. */
export const DEFINITIONS_URL = `${(import.meta.env.VITE_API_URL ?? "").replace(/\/$/, "")}/api/docs`;
