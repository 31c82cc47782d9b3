"""The evaluation report: per agent across windows, the distribution of its rank, its total return, and its
excess return over each control, with the share of windows in which it beat that control.

Definitions (per window w, from the equity marked at the window's last cycle; every window starts from the
race's starting cash in a fresh database):
- total return r(a, w) = equity / starting cash - 1;
- rank(a, w) = 1 + the number of agents with a strictly higher r in w (ties share the better rank);
- excess over control c: r(a, w) - r(c, w); a window is "beaten" when the excess is > 0.
Controls are the baseline agents whose model is in `CONTROL_MODELS` (buy-and-hold, equal weight, always-hold,
random). A distribution is min / median / mean / max over the windows. Pure: no I/O.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from shared.evaluation.runner import AgentOutcome, WindowResult


def distribution(values: Sequence[float]) -> dict[str, float]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "max": max(values),
    }


def ranks(outcomes: Iterable[AgentOutcome]) -> dict[str, int]:
    """Agent name -> rank by total return in one window (1 is best; ties share the better rank)."""
    returns = {outcome.name: Decimal(outcome.total_return) for outcome in outcomes}
    return {name: 1 + sum(other > mine for other in returns.values()) for name, mine in returns.items()}


def is_control(outcome: AgentOutcome, control_models: frozenset[str]) -> bool:
    return outcome.provider == "baseline" and outcome.model in control_models


def build_report(
    results: Sequence[WindowResult], *, control_models: frozenset[str], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """The whole report as plain data (what evaluation.json holds and the tables are printed from)."""
    if not results:
        raise ValueError("no windows to report on")
    names: list[str] = []
    controls: list[str] = []
    for result in results:
        for outcome in result.agents:
            if outcome.name not in names:
                names.append(outcome.name)
            if is_control(outcome, control_models) and outcome.name not in controls:
                controls.append(outcome.name)
    windows = []
    per_agent: dict[str, dict[str, list[float]]] = {name: {"rank": [], "return": []} for name in names}
    excess: dict[str, dict[str, list[Decimal]]] = {name: {c: [] for c in controls if c != name} for name in names}
    for result in results:
        by_name = {outcome.name: outcome for outcome in result.agents}
        window_ranks = ranks(result.agents)
        for name, outcome in by_name.items():
            mine = Decimal(outcome.total_return)
            per_agent[name]["rank"].append(float(window_ranks[name]))
            per_agent[name]["return"].append(float(mine))
            for control, values in excess[name].items():
                if control in by_name:
                    values.append(mine - Decimal(by_name[control].total_return))
        windows.append(
            {
                "index": result.window.index,
                "label": result.window.label,
                "start": result.window.start.isoformat(),
                "end": result.window.end.isoformat(),
                "cycles": result.cycles,
                "decisions": result.decisions,
                "trades": result.trades,
                "rejections": result.rejections,
                "backtest_s": round(result.duration_s, 3),
                "database": result.database_path or None,  # kept with --keep-databases
                "starting_cash": result.starting_cash,
                "agents": [
                    {
                        "name": o.name,
                        "model": o.model,
                        "provider": o.provider,
                        "equity": o.equity,
                        "equity_at": o.equity_at,
                        "total_return": o.total_return,
                        "rank": window_ranks[o.name],
                    }
                    for o in result.agents
                ],
            }
        )
    agents = []
    for name in names:
        entry: dict[str, Any] = {
            "name": name,
            "control": name in controls,
            "windows": len(per_agent[name]["return"]),
            "rank": distribution(per_agent[name]["rank"]),
            "total_return": distribution(per_agent[name]["return"]),
            "excess": {},
        }
        for control, values in excess[name].items():
            if values:
                entry["excess"][control] = {
                    **distribution([float(v) for v in values]),
                    "windows": len(values),
                    "beaten": sum(v > 0 for v in values),
                    "beaten_share": sum(v > 0 for v in values) / len(values),
                }
        agents.append(entry)
    agents.sort(key=lambda a: (a["rank"]["mean"], a["name"]))
    excluded = sorted({pair for result in results for pair in result.excluded})
    return {
        **meta,
        "controls": controls,
        "excluded": [{"name": name, "reason": reason} for name, reason in excluded],
        "agents": agents,
        "windows": windows,
    }


def _pct(value: float) -> str:
    return f"{value * 100:+.2f}"


def markdown(report: Mapping[str, Any]) -> str:
    """The report's tables in Markdown (also what the CLI prints)."""
    lines = [
        f"# Robustness across {len(report['windows'])} windows ({report['windows_spec']})",
        "",
        f"Data: {report['data']}, {report['start']} .. {report['end']} (UTC, cycles of {report['cycle_minutes']} min); "
        f"each window raced from {report['starting_cash']} USD in its own database.",
        f"Controls: {', '.join(report['controls']) or 'none'}.",
    ]
    quality = report.get("data_quality")
    if quality:
        lines.append(
            f"Data quality: {quality['missing_candles']} missing candles, {quality['zero_volume_bars']} zero-volume "
            "bars, never filled in (ranges in evaluation.json); a symbol behind the others is not traded."
        )
    if report["excluded"]:
        lines.append("Not racing (network agents take part only when their endpoint is configured):")
        lines += [f"- {e['name']}: {e['reason']}" for e in report["excluded"]]
    lines += ["", "## Total return (%) and rank across windows", ""]
    lines += [
        "| agent | return min | median | mean | max | rank min | median | mean | max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for agent in report["agents"]:
        r, k = agent["total_return"], agent["rank"]
        label = agent["name"] + (" (control)" if agent["control"] else "")
        lines.append(
            f"| {label} | {_pct(r['min'])} | {_pct(r['median'])} | {_pct(r['mean'])} | {_pct(r['max'])} "
            f"| {k['min']:.0f} | {k['median']:.1f} | {k['mean']:.2f} | {k['max']:.0f} |"
        )
    controls = report["controls"]
    if controls:
        lines += ["", "## Excess return over each control (percentage points): median [min, max], windows beaten", ""]
        lines.append("| agent | " + " | ".join(f"vs {c}" for c in controls) + " |")
        lines.append("|---|" + "---:|" * len(controls))
        for agent in report["agents"]:
            cells = []
            for control in controls:
                found = agent["excess"].get(control)
                cells.append(
                    "-"
                    if found is None
                    else f"{_pct(found['median'])} [{_pct(found['min'])}, {_pct(found['max'])}], "
                    f"{found['beaten']}/{found['windows']}"
                )
            lines.append(f"| {agent['name']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Windows",
        "",
        "| window | from | to | cycles | trades | best (return %) |",
        "|---|---|---|---:|---:|---|",
    ]
    for window in report["windows"]:
        best = min(window["agents"], key=lambda a: (a["rank"], a["name"]))
        lines.append(
            f"| {window['label']} | {window['start'][:16]} | {window['end'][:16]} | {window['cycles']} "
            f"| {window['trades']} | {best['name']} ({_pct(float(best['total_return']))}) |"
        )
    return "\n".join(lines) + "\n"
