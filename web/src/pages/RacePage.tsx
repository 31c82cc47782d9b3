import { useMemo } from "react";
import { useSearchParams } from "react-router-dom";

import { useEquityCurves, useLeaderboard, useRace } from "../api/queries";
import { LeaderboardTable } from "../components/LeaderboardTable";
import { RaceClock } from "../components/RaceClock";
import { StatisticsNote } from "../components/StatisticsNote";
import { Empty, Loading, QueryError } from "../components/States";
import { type ChartSeries, TimeChart } from "../components/TimeChart";
import { formatMoney } from "../lib/decimal";
import { prefersDark, seriesStyle } from "../lib/palette";
import { alignColumns, RANGES, type RangeKey, rangeStart } from "../lib/series";

export function RacePage() {
  const race = useRace();
  const board = useLeaderboard();
  const [params, setParams] = useSearchParams();
  const range = (params.get("range") ?? "all") as RangeKey;
  const log = params.get("scale") === "log";
  const agents = useMemo(
    () => [...(board.data?.items ?? [])].sort((a, b) => a.agent_id - b.agent_id),
    [board.data],
  );
  const rangeKey = range in RANGES ? range : "all";
  const start = rangeStart(rangeKey, race.data?.last_cycle ?? "");
  // One request for every curve, started at navigation beside /race and /leaderboard (a range other than
  // "all" waits for the race's latest cycle to know where it starts).
  const curves = useEquityCurves(start, rangeKey === "all" || start !== null);
  const curveData = useMemo(() => {
    const byAgent = new Map((curves.data?.curves ?? []).map((curve) => [curve.agent_id, curve]));
    return agents.map((agent) => byAgent.get(agent.agent_id));
  }, [agents, curves.data]);
  const dataKey = curveData.map((d) => (d ? `${d.agent_id}:${d.at.length}:${d.at.at(-1)}` : "-")).join();

  const chart = useMemo(() => {
    const { x, values } = alignColumns(curveData);
    const dark = prefersDark();
    const series: ChartSeries[] = agents.map((agent, i) => {
      const style = seriesStyle(i, dark);
      return {
        label: `${style.marker} ${agent.name}${agent.active ? "" : " (inactive)"}`,
        color: style.color,
        dash: agent.active ? style.dash : [2, 6],
        values: values[i] ?? [],
      };
    });
    return { x, series };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [agents, dataKey]);

  const update = (key: string, value: string | null) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (value === null) next.delete(key);
        else next.set(key, value);
        return next;
      },
      { replace: true },
    );

  return (
    <>
      <header className="page-header">
        <h1>The race</h1>
        <RaceClock race={race.data} board={board.data} />
      </header>
      {board.isPending ? <Loading what="the leaderboard" /> : null}
      {board.isError && !board.data ? <QueryError error={board.error} what="the leaderboard" /> : null}
      {board.data ? (
        <>
          <section aria-labelledby="chart-title" className="card">
            <div className="toolbar">
              <h2 id="chart-title">Account value</h2>
              <div role="group" aria-label="Time range" className="segmented">
                {(Object.keys(RANGES) as RangeKey[]).map((key) => (
                  <button
                    key={key}
                    type="button"
                    aria-pressed={range === key}
                    onClick={() => update("range", key === "all" ? null : key)}
                  >
                    {key.toUpperCase()}
                  </button>
                ))}
              </div>
              <div role="group" aria-label="Scale" className="segmented">
                <button type="button" aria-pressed={!log} onClick={() => update("scale", null)}>
                  Linear
                </button>
                <button type="button" aria-pressed={log} onClick={() => update("scale", "log")}>
                  Log
                </button>
              </div>
            </div>
            {chart.x.length === 0 ? (
              <Empty>No marks yet: the chart starts with the first cycle.</Empty>
            ) : (
              <TimeChart
                title="Equity (USD)"
                testId="equity-chart"
                x={chart.x}
                series={chart.series}
                log={log}
                valuePrefix="$"
              />
            )}
            <p className="muted small">
              Starting cash {formatMoney(board.data.starting_cash)}. Hover for every agent's value; click a legend
              entry to hide or show it.
            </p>
          </section>
          <section aria-labelledby="board-title" className="card">
            <h2 id="board-title">Leaderboard</h2>
            <LeaderboardTable rows={board.data.items} />
            <StatisticsNote status={board.data.statistics} />
          </section>
        </>
      ) : null}
    </>
  );
}
