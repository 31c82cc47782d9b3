import { alignColumns, alignSeries } from "./series";

describe("aligning curves on their union of times", () => {
  it("puts column curves on one axis with gaps as null, like point series", () => {
    const a = { at: ["2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z"], equity: ["100000.00000000", "101000.5"] };
    const b = { at: ["2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"], equity: ["99000", "98000.25"] };

    const { x, values } = alignColumns([a, undefined, b]);

    expect(x).toEqual([1704067200, 1704070800, 1704074400]);
    expect(values).toEqual([
      [100000, null, 101000.5],
      [null, null, null],
      [null, 99000, 98000.25],
    ]);
    const points = (c: typeof a, agent_id: number) => ({
      agent_id,
      start: null,
      end: null,
      max_points: 500,
      points: c.at.map((at, i) => ({ at, equity: c.equity[i]!, cash: "0", drawdown_pct: "0" })),
    });
    expect(alignSeries([points(a, 1), undefined, points(b, 2)])).toEqual({ x, values });
  });

  it("gives an empty axis for no curves", () => {
    expect(alignColumns([])).toEqual({ x: [], values: [] });
    expect(alignColumns([{ at: [], equity: [] }])).toEqual({ x: [], values: [[]] });
  });
});
