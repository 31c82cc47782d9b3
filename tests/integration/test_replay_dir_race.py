"""Your own candle files through the local race's entry point, on SQLite: the data-quality report in the
run's output, and a bad file stopping the start with nothing stored."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from shared.adapters.market_data.replay import ReplayDataError
from shared.bootstrap import set_container
from shared.config import ConnectionStrings, MarketDataSettings, Settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "replay_dir"


def test_make_backtest_on_your_own_data_reports_its_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.local_race import main

    database = tmp_path / "race.db"
    monkeypatch.setenv("ConnectionStrings__TradingDb", f"sqlite:///{database}")
    monkeypatch.setenv("MarketData__ReplayDir", str(FIXTURE))
    try:
        main(["--fast-forward", "2021-01-01", "--no-http", "--cycles", "0", "--no-ml"])
    finally:
        set_container(None)
    out = capsys.readouterr().out
    assert "3 assets, 12 missing candles, 3 zero-volume bars (kept as they are, never filled in)" in out
    assert "BTC: 188 candles 2020-12-19 00:00..2020-12-26 23:00 UTC; missing 4 in 2 gaps" in out
    assert f"The candles in {FIXTURE} end (the last closes at 2020-12-27 00:00 UTC)" in out  # not "bundled"
    assert "Fast-forwarding the race from 2020-12-21 00:00 to 2020-12-27 01:00 UTC" in out
    with sqlite3.connect(database) as connection:
        assets = [row[0] for row in connection.execute("SELECT symbol FROM assets ORDER BY symbol")]
        assert assets == ["BTC", "ETH", "SOL"]
        # Every stored candle is one of the files' rows: 188 per symbol, the missing hours not filled in.
        counts = dict(connection.execute("SELECT symbol, count(*) FROM candles GROUP BY symbol").fetchall())
        assert counts == {"BTC": 188, "ETH": 188, "SOL": 188}
        missing = connection.execute(
            "SELECT count(*) FROM candles WHERE open_time LIKE '2020-12-21 15%' OR open_time LIKE '2020-12-21 16%'"
        ).fetchone()
        assert missing == (0,)
        zero_volume_hour = connection.execute("SELECT count(*) FROM candles WHERE open_time LIKE '2020-12-21 14%'")
        assert zero_volume_hour.fetchone() == (3,)  # the same text form matches the rows that exist


def test_a_bad_file_stops_the_start_with_nothing_stored(tmp_path: Path) -> None:
    from shared.local_race import prepare

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(FIXTURE / "BTC_1h.csv", data)
    lines = (FIXTURE / "SOL_1h.csv").read_text().splitlines(keepends=True)
    lines[50] = lines[50].replace(",", ",x", 1)  # line 51 of the file: a price that is not a number
    (data / "SOL_1h.csv").write_text("".join(lines))
    database = tmp_path / "race.db"
    settings = Settings(
        connection_strings=ConnectionStrings(TradingDb=f"sqlite:///{database}"),
        market_data=MarketDataSettings(Provider="replay", ReplayDir=data),
    )
    try:
        with pytest.raises(ReplayDataError, match=r"SOL_1h.csv:51: not a number"):
            prepare(settings)
    finally:
        set_container(None)
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM candles").fetchone() == (0,)
        assert connection.execute("SELECT count(*) FROM assets").fetchone() == (0,)
