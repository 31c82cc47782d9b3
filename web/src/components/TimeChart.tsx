import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  color: string;
  dash: number[];
  values: (number | null)[];
  fill?: string;
}

interface Props {
  x: number[]; // epoch seconds, ascending
  series: ChartSeries[];
  log?: boolean;
  height?: number;
  valuePrefix?: string;
  valueSuffix?: string;
  testId?: string;
  title: string;
}

const VALUE = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2, minimumFractionDigits: 2 });

/** Many series over one time axis (uPlot: canvas, fast with 20 x 8,760 points). The legend shows every
 * series' value at the cursor and toggles a series on click. */
export function TimeChart({ x, series, log = false, height = 320, valuePrefix = "", valueSuffix = "", testId, title }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = `${log}|${height}|${series.map((s) => `${s.label}${s.color}${s.dash.join()}`).join(";")}`;

  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const format = (value: number | null | undefined) =>
      value == null ? "—" : `${valuePrefix}${VALUE.format(value)}${valueSuffix}`;
    const options: uPlot.Options = {
      title,
      width: Math.max(element.clientWidth, 200),
      height,
      scales: { x: { time: true }, y: log ? { distr: 3 } : {} },
      axes: [
        { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.2)" } },
        {
          stroke: "currentColor",
          grid: { stroke: "rgba(128,128,128,0.2)" },
          size: 70,
          values: (_u, ticks) => ticks.map((t) => `${valuePrefix}${Intl.NumberFormat("en-US", { notation: "compact" }).format(t)}${valueSuffix}`),
        },
      ],
      cursor: { focus: { prox: 16 } },
      focus: { alpha: 0.35 },
      series: [
        { label: "Time (UTC)", value: (_u, v) => (v == null ? "—" : new Date(v * 1000).toISOString().slice(0, 16).replace("T", " ")) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          dash: s.dash,
          width: 2,
          fill: s.fill,
          spanGaps: true,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => format(v),
        })),
      ],
    };
    const chart = new uPlot(options, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, element);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 200), height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // Rebuilt only when the series set or scale changes; new points go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);

  useEffect(() => {
    plot.current?.setData([x, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [x, series]);

  return (
    <div
      className="chart"
      ref={host}
      data-testid={testId}
      data-series-count={series.length}
      data-points={x.length}
      role="img"
      aria-label={`${title}: ${series.length} series, ${x.length} points`}
    />
  );
}
