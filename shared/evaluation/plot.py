"""The evaluation's PNG: per agent, a box plot of its total return and of its rank across windows, with every
window's value drawn over the box. matplotlib is imported here, lazily, on the headless Agg backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_plot(report: Mapping[str, Any], path: Path) -> Path:
    """Draw the report's distributions into `path` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agents = [agent["name"] for agent in report["agents"]]
    returns: dict[str, list[float]] = {name: [] for name in agents}
    ranks: dict[str, list[float]] = {name: [] for name in agents}
    for window in report["windows"]:
        for entry in window["agents"]:
            if entry["name"] in returns:
                returns[entry["name"]].append(float(entry["total_return"]) * 100)
                ranks[entry["name"]].append(float(entry["rank"]))
    controls = set(report["controls"])
    labels = [f"{name}\n(control)" if name in controls else name for name in agents]
    height = max(3.0, 0.55 * len(agents) + 1.5)
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, height), sharey=True, layout="constrained")
    positions = list(range(1, len(agents) + 1))
    for axis, values, title in (
        (left, returns, "total return per window (%)"),
        (right, ranks, "rank per window (1 = best)"),
    ):
        data = [values[name] for name in agents]
        axis.boxplot(data, positions=positions, orientation="horizontal", widths=0.6, showmeans=True, showfliers=False)
        for position, points in zip(positions, data, strict=True):
            offsets = [position + 0.18 * ((i % 5) - 2) / 2 for i in range(len(points))]
            axis.scatter(points, offsets, s=14, alpha=0.6, color="tab:blue", zorder=3)
        axis.set_title(title)
        axis.grid(axis="x", alpha=0.3)
    left.axvline(0, color="grey", linewidth=0.8)
    right.invert_xaxis()  # the best rank on the right, like the highest return
    left.set_yticks(positions, labels)
    left.invert_yaxis()  # the report's order, best mean rank on top
    figure.suptitle(
        f"{len(report['windows'])} windows ({report['windows_spec']}), {report['start'][:10]} .. {report['end'][:10]}: "
        "box = quartiles, line = median, triangle = mean, dots = the windows"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
