"""`make evaluate` on the real December 2020 candles: three windows raced in two spawned processes, each in its
own SQLite database; the report's numbers recomputed from what those databases store."""

from __future__ import annotations

import json
import sqlite3
import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.evaluation.cli import EvaluationOptions, evaluate, main
from shared.evaluation.windows import WindowError, parse_windows_spec, split_windows

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "replay_dir"
HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("evaluation")
    options = EvaluationOptions(windows=3, jobs=2, out=out, replay_dir=FIXTURE, keep_databases=True)
    output = evaluate(options)
    assert output.files == {
        "markdown": out / "evaluation.md",
        "json": out / "evaluation.json",
        "png": out / "evaluation.png",
    }
    return json.loads(output.files["json"].read_text()), out


def test_the_windows_are_disjoint_and_cover_the_data(evaluation: tuple[dict[str, Any], Path]) -> None:
    report, _out = evaluation
    windows = report["windows"]
    # The data opens 2020-12-19 00:00; after a snapshot's 48 candles, the race runs 12-21 00:00 .. 12-27 00:00.
    assert report["start"] == "2020-12-21T00:00:00+00:00"
    assert report["end"] == "2020-12-27T01:00:00+00:00"
    assert windows[0]["start"] == report["start"]
    assert windows[-1]["end"] == report["end"]
    assert [w["start"] for w in windows[1:]] == [w["end"] for w in windows[:-1]]  # each starts where one ends
    assert [w["cycles"] for w in windows] == [48, 48, 49]
    assert sum(w["cycles"] for w in windows) == 145
    assert report["data_quality"]["missing_candles"] == 12  # the files' gaps travel with the report
    assert report["data_quality"]["symbols"][0]["gaps"][0]["from"] == "2020-12-21T15:00:00+00:00"


def stored(database: str, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchall()


def test_each_window_has_its_own_database(evaluation: tuple[dict[str, Any], Path]) -> None:
    report, out = evaluation
    paths = [w["database"] for w in report["windows"]]
    assert len(set(paths)) == 3
    assert all(Path(p).parent == out / "databases" for p in paths)
    for window in report["windows"]:
        first, last, count = stored(
            window["database"], "SELECT min(cycle_time), max(cycle_time), count(*) FROM cycles"
        )[0]
        start = datetime.fromisoformat(window["start"])
        assert datetime.fromisoformat(first).replace(tzinfo=UTC) == start
        assert datetime.fromisoformat(last).replace(tzinfo=UTC) == start + (window["cycles"] - 1) * HOUR
        assert count == window["cycles"]


def test_the_report_is_what_the_databases_store(evaluation: tuple[dict[str, Any], Path]) -> None:
    report, _out = evaluation
    returns: dict[str, list[Decimal]] = {}
    for window in report["windows"]:
        last = datetime.fromisoformat(window["start"]) + (window["cycles"] - 1) * HOUR
        rows = stored(
            window["database"],
            "SELECT a.name, e.equity FROM equity_snapshots e JOIN agents a ON a.id = e.agent_id "
            f"WHERE a.active = 1 AND e.at = '{last:%Y-%m-%d %H:%M:%S.%f}'",
        )
        assert len(rows) == 6  # the six baselines (controls among them); the network agents sit out
        by_name = {entry["name"]: entry for entry in window["agents"]}
        # Money is stored as integers of 10^-8 USD (ScaledDecimal); every window starts from 100,000 USD.
        recomputed = {name: Decimal(equity).scaleb(-8) / Decimal(100_000) - 1 for name, equity in rows}
        for name, value in recomputed.items():
            assert Decimal(by_name[name]["total_return"]) == pytest.approx(value, abs=Decimal("1e-11"))
            returns.setdefault(name, []).append(value)
            better = sum(other > value for other in recomputed.values())
            assert by_name[name]["rank"] == 1 + better
    for agent in report["agents"]:
        values = sorted(returns[agent["name"]])
        assert agent["total_return"]["min"] == pytest.approx(float(values[0]))
        assert agent["total_return"]["median"] == pytest.approx(float(values[1]))
        assert agent["total_return"]["max"] == pytest.approx(float(values[2]))
        for control, excess in agent["excess"].items():
            diffs = [a - c for a, c in zip(returns[agent["name"]], returns[control], strict=True)]
            assert excess["mean"] == pytest.approx(float(sum(diffs) / 3))
            assert excess["beaten"] == sum(d > 0 for d in diffs)
    assert report["controls"] == ["Buy & Hold BTC", "Random Trader", "Always Hold", "Equal-Weight Buy & Hold"]
    hold = next(a for a in report["agents"] if a["name"] == "Always Hold")
    assert hold["total_return"] == {"min": 0.0, "median": 0.0, "mean": 0.0, "max": 0.0}


def test_the_agents_that_did_not_race_are_named_with_why(evaluation: tuple[dict[str, Any], Path]) -> None:
    report, out = evaluation
    excluded = {entry["name"]: entry["reason"] for entry in report["excluded"]}
    assert excluded["Custom ML"].startswith("ML service not available: CustomMlAgent__BaseUrl is not set")
    assert excluded["Llama 3.3 70B (Groq)"].startswith("not configured: Llama__ApiKey is not set")
    text = (out / "evaluation.md").read_text()
    assert "- Custom ML: ML service not available" in text
    assert "| Momentum 24h |" in text


def test_the_plot_is_a_png(evaluation: tuple[dict[str, Any], Path]) -> None:
    _report, out = evaluation
    data = (out / "evaluation.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert width >= 1000
    assert height >= 300
    from PIL import Image

    with Image.open(out / "evaluation.png") as image:
        image.verify()


def test_bad_window_arguments_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(WindowError, match="at least 1"):
        parse_windows_spec("0")
    with pytest.raises(WindowError, match="monthly, quarterly or a number"):
        parse_windows_spec("weekly")
    with pytest.raises(WindowError, match=r"window 1/10 .* holds 14 cycles, fewer than the 24"):
        split_windows(utc(2020, 12, 21), utc(2020, 12, 27, 1), 10, cycle=HOUR)
    # The fixture's six days of cycles split in 30 make windows of 4 or 5 cycles: too short to say anything.
    with pytest.raises(SystemExit) as exit_info:
        main(["--replay-dir", str(FIXTURE), "--windows", "30", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "holds 4 cycles, fewer than the 24 a window needs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--windows", "0"])
    assert exit_info.value.code == 2
    assert "--windows must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--jobs", "0"])
    assert "must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "evaluation.json").exists()
