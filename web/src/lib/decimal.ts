// Exact decimal strings from the API ("100000.00000000", "-1.5"): parsed into digits, never into floats,
// so what the table shows is what the ledger holds. Numbers (floats) are only made for charts.

export interface ParsedDecimal {
  negative: boolean;
  int: string; // digits, no leading zeros ("0" for zero)
  frac: string; // digits, may be ""
}

const DECIMAL = /^([+-])?(\d+)(?:\.(\d+))?$/;

export function parseDecimal(text: string): ParsedDecimal | null {
  const match = DECIMAL.exec(text.trim());
  if (!match) return null;
  const int = (match[2] ?? "0").replace(/^0+(?=\d)/, "");
  const frac = match[3] ?? "";
  const zero = /^0*$/.test(int + frac);
  return { negative: match[1] === "-" && !zero, int, frac };
}

function toScaled(value: ParsedDecimal, scale: number): bigint {
  const frac = value.frac.padEnd(scale, "0").slice(0, scale);
  const magnitude = BigInt(value.int + frac);
  return value.negative ? -magnitude : magnitude;
}

function fromScaled(scaled: bigint, scale: number): string {
  const negative = scaled < 0n;
  const digits = (negative ? -scaled : scaled).toString().padStart(scale + 1, "0");
  const int = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale);
  return `${negative ? "-" : ""}${int}${scale > 0 ? `.${frac}` : ""}`;
}

/** Round half away from zero to `digits` fraction digits, as a plain decimal string. */
export function roundDecimal(text: string, digits: number): string | null {
  const value = parseDecimal(text);
  if (!value) return null;
  const extra = value.frac.length > digits ? value.frac.length - digits : 0;
  let scaled = toScaled({ ...value, negative: false }, digits + extra);
  if (extra > 0) {
    const divisor = 10n ** BigInt(extra);
    const remainder = scaled % divisor;
    scaled = scaled / divisor + (remainder * 2n >= divisor ? 1n : 0n);
  }
  const result = fromScaled(scaled, digits);
  return value.negative && scaled !== 0n ? `-${result}` : result;
}

/** a x b, exact. */
export function multiplyDecimal(a: string, b: string): string | null {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  if (!x || !y) return null;
  const product = toScaled(x, x.frac.length) * toScaled(y, y.frac.length);
  return fromScaled(product, x.frac.length + y.frac.length);
}

/** Sign of a - b, exact (for sorting). */
export function compareDecimal(a: string, b: string): number {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  if (!x || !y) return x ? 1 : y ? -1 : 0;
  const scale = Math.max(x.frac.length, y.frac.length);
  const diff = toScaled(x, scale) - toScaled(y, scale);
  return diff === 0n ? 0 : diff > 0n ? 1 : -1;
}

function group(int: string): string {
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export interface FormatOptions {
  /** Fixed fraction digits (rounded half away from zero); omit to keep every significant digit. */
  digits?: number;
  prefix?: string;
  suffix?: string;
  /** Show "+" on positive values (returns). */
  signed?: boolean;
}

/** "1234567.891" -> "1,234,567.89" (digits: 2); null/invalid -> "—". */
export function formatDecimal(text: string | null | undefined, options: FormatOptions = {}): string {
  if (text == null) return "—";
  const rounded = options.digits === undefined ? text : roundDecimal(text, options.digits);
  const value = rounded === null ? null : parseDecimal(rounded);
  if (!value) return "—";
  const frac = options.digits === undefined ? value.frac.replace(/0+$/, "") : value.frac;
  const sign = value.negative ? "−" : options.signed && /[1-9]/.test(value.int + frac) ? "+" : "";
  return `${sign}${options.prefix ?? ""}${group(value.int)}${frac ? `.${frac}` : ""}${options.suffix ?? ""}`;
}

export const formatMoney = (text: string | null | undefined) => formatDecimal(text, { digits: 2, prefix: "$" });
export const formatPct = (text: string | null | undefined, signed = true) =>
  formatDecimal(text, { digits: 2, suffix: "%", signed });
/** Prices keep every digit the API sent (an XRP price has four), with at least cents. */
export function formatPrice(text: string | null | undefined): string {
  const trimmed = formatDecimal(text, { prefix: "$" });
  if (trimmed === "—") return trimmed;
  const dot = trimmed.indexOf(".");
  return dot === -1 ? `${trimmed}.00` : trimmed.length - dot === 2 ? `${trimmed}0` : trimmed;
}
export const formatQuantity = (text: string | null | undefined) => formatDecimal(text);
export const formatInt = (value: number | null | undefined) =>
  value == null ? "—" : group(String(Math.trunc(value)));

/** For charts only: the float nearest the decimal. */
export function toChartNumber(text: string | null | undefined): number | null {
  if (text == null) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}
