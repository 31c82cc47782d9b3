import { useEffect, useRef } from "react";
import uPlot from "uplot";

import type { Candles } from "../api/client";
import { toChartNumber } from "../lib/decimal";
import { toEpochSeconds } from "../lib/time";

const UP = "#009E73";
const DOWN = "#D55E00";

/** Candles drawn on uPlot's canvas: a wick (low-high) and a body (open-close); up green/hollow, down orange/filled. */
function candlePlugin(): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const [xs, opens, highs, lows, closes] = u.data as unknown as number[][];
        if (!xs || !opens || !highs || !lows || !closes) return;
        const ctx = u.ctx;
        const visible = Math.max(1, (u.scales.x?.max ?? 1) - (u.scales.x?.min ?? 0));
        const step = xs.length > 1 ? (xs[1]! - xs[0]!) : visible;
        const bodyWidth = Math.max(1, Math.min(14, (u.bbox.width * step) / visible * 0.7));
        ctx.save();
        ctx.beginPath();
        ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
        ctx.clip();
        for (let i = 0; i < xs.length; i++) {
          const x = u.valToPos(xs[i]!, "x", true);
          const open = u.valToPos(opens[i]!, "y", true);
          const close = u.valToPos(closes[i]!, "y", true);
          const up = closes[i]! >= opens[i]!;
          ctx.strokeStyle = ctx.fillStyle = up ? UP : DOWN;
          ctx.lineWidth = 1;
          ctx.beginPath();
          ctx.moveTo(Math.round(x) + 0.5, u.valToPos(highs[i]!, "y", true));
          ctx.lineTo(Math.round(x) + 0.5, u.valToPos(lows[i]!, "y", true));
          ctx.stroke();
          const top = Math.min(open, close);
          const h = Math.max(1, Math.abs(close - open));
          if (up) ctx.strokeRect(x - bodyWidth / 2, top, bodyWidth, h);
          else ctx.fillRect(x - bodyWidth / 2, top, bodyWidth, h);
        }
        ctx.restore();
      },
    },
  };
}

export function CandleChart({ candles, height = 360 }: { candles: Candles; height?: number }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const items = candles.items;
    const num = (v: string) => toChartNumber(v) ?? 0;
    const data: uPlot.AlignedData = [
      items.map((c) => toEpochSeconds(c.open_time)),
      items.map((c) => num(c.open)),
      items.map((c) => num(c.high)),
      items.map((c) => num(c.low)),
      items.map((c) => num(c.close)),
    ];
    const hidden = { stroke: "transparent", points: { show: false } };
    const chart = new uPlot(
      {
        title: `${candles.symbol} ${candles.interval} candles`,
        width: Math.max(element.clientWidth, 200),
        height,
        scales: { x: { time: true }, y: { range: (_u, min, max) => [min * 0.995, max * 1.005] } },
        axes: [{ stroke: "currentColor" }, { stroke: "currentColor", size: 70 }],
        series: [{}, { label: "Open", ...hidden }, { label: "High", ...hidden }, { label: "Low", ...hidden }, { label: "Close", ...hidden }],
        plugins: [candlePlugin()],
      },
      data,
      element,
    );
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 200), height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [candles, height]);
  return <div className="chart" ref={host} data-testid="candle-chart" data-points={candles.items.length} />;
}
