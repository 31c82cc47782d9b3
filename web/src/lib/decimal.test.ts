import { compareDecimal, formatDecimal, formatMoney, formatPct, formatPrice, multiplyDecimal, roundDecimal } from "./decimal";

describe("decimal strings", () => {
  it("formats money from the exact string, rounding half away from zero", () => {
    expect(formatMoney("100000.00000000")).toBe("$100,000.00");
    expect(formatMoney("1234567.895")).toBe("$1,234,567.90");
    expect(formatMoney("-0.004")).toBe("$0.00");
    expect(formatMoney("-12.345")).toBe("−$12.35");
  });

  it("keeps digits a float would lose", () => {
    // 0.1 + 0.2 style artefacts and beyond-2^53 magnitudes stay exact.
    expect(formatDecimal("9007199254740993.10")).toBe("9,007,199,254,740,993.1");
    expect(roundDecimal("0.285", 2)).toBe("0.29"); // (0.285).toFixed(2) === "0.28"
    expect(formatDecimal("0.00000001")).toBe("0.00000001");
  });

  it("formats percentages with a sign", () => {
    expect(formatPct("39.15020704")).toBe("+39.15%");
    expect(formatPct("-3.01267187")).toBe("−3.01%");
    expect(formatPct("0.00000000")).toBe("0.00%");
    expect(formatPct("20.18", false)).toBe("20.18%");
  });

  it("keeps a price's digits, with at least cents", () => {
    expect(formatPrice("0.50120000")).toBe("$0.5012");
    expect(formatPrice("42015.60000000")).toBe("$42,015.60");
    expect(formatPrice("298")).toBe("$298.00");
  });

  it("shows a dash for missing or malformed values", () => {
    expect(formatMoney(null)).toBe("—");
    expect(formatMoney(undefined)).toBe("—");
    expect(formatMoney("1e5")).toBe("—");
  });

  it("multiplies and compares exactly", () => {
    expect(multiplyDecimal("0.12345678", "42000.5")).toBe("5185.246488390");
    expect(compareDecimal("100000.00000001", "100000")).toBe(1);
    expect(compareDecimal("-1.5", "-1.50")).toBe(0);
    expect(compareDecimal("-2", "1")).toBe(-1);
  });
});
