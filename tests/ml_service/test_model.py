"""The model: deterministic training with a time-based split, honest metrics, a verified artifact, features that
ignore price scale, the order policy, and the device setting."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import torch

from ml_service.config import ServiceSettings
from ml_service.data import CandleSeries, load_all
from ml_service.features import input_dim, window_features
from ml_service.model import DEFAULT_ARTIFACT_DIR, ModelBundle, Prediction, load_bundle, resolve_device, weights_digest
from ml_service.policy import Thresholds, plan_orders
from ml_service.train import TrainConfig, build_splits, main, train
from shared.contracts.ml_decisions import DecisionRequest
from tests.ml_service.conftest import decision_body

REPO = Path(__file__).resolve().parents[2]
SMALL = TrainConfig(max_candles=700, epochs=2, split_time=datetime(2024, 1, 20, tzinfo=UTC), symbols=("BTC", "ETH"))


def test_training_on_a_small_slice_is_deterministic(series: dict[str, CandleSeries]) -> None:
    net_a, meta_a = train(SMALL, series)
    net_b, meta_b = train(SMALL, series)
    net_c, _ = train(TrainConfig(**{**SMALL.__dict__, "seed": 7}), series)

    assert weights_digest(net_a.state_dict()) == weights_digest(net_b.state_dict())
    assert meta_a == meta_b
    assert weights_digest(net_a.state_dict()) != weights_digest(net_c.state_dict())
    assert meta_a["symbols"] == ["BTC", "ETH"]


def test_the_split_is_by_time_with_no_test_input_overlapping_a_training_target() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = tuple((100.0 + i % 7, 101.0 + i % 7, 99.0 + i % 7, 100.5 + (i * 13) % 5, 10.0) for i in range(200))
    times = tuple(start + timedelta(hours=i) for i in range(200))
    s = CandleSeries("BTC", timedelta(hours=1), times, rows)
    split = start + timedelta(hours=100)
    config = TrainConfig(window=4, split_time=split)

    train_split, test_split, data_start, data_end = build_splits({"BTC": s}, config)

    # A window is 4 + 1 inputs and 1 target (6 candles). Train: targets at hours 5..99 (95); test: windows whose
    # first input is at hour >= 100, i.e. starts 100..194 (95). Flat targets are left out of both.
    flat = {i for i in range(1, 200) if rows[i][3] == rows[i - 1][3]}
    assert len(train_split.next_return) == len([t for t in range(5, 100) if t not in flat])
    assert len(test_split.next_return) == len([t for t in range(105, 200) if t not in flat])
    assert (data_start, data_end) == (start.isoformat(), times[-1].isoformat())


def test_the_committed_artifact_loads_and_reports_honest_metrics(bundle: ModelBundle) -> None:
    meta = bundle.metadata
    test = meta.test
    assert meta.version.endswith(meta.weights_sha256[:8])
    assert meta.window == 24
    assert bundle.candles_needed == 25
    assert len(meta.feature_names) == input_dim(meta.window)
    assert meta.split_time.startswith("2024-09-01")
    assert test.samples > 10_000
    assert 0.45 < test.accuracy < 0.6  # hourly direction is nearly a coin flip; a much better number is a bug
    assert test.always_up_accuracy == test.up_fraction
    assert meta.buy_above > 0.5 > meta.sell_below
    # Tiny: weights + metadata JSON only.
    assert (DEFAULT_ARTIFACT_DIR / "model.pt").stat().st_size < 100_000
    readme = (REPO / "ml_service" / "README.md").read_text()
    for value in (test.accuracy, test.always_up_accuracy, test.previous_direction_accuracy, test.reversal_accuracy):
        assert f"{value:.2%}" in readme, f"ml_service/README.md does not report {value:.2%} (from model.json)"


def test_a_tampered_artifact_does_not_load(tmp_path: Path) -> None:
    for name in ("model.pt", "model.json"):
        (tmp_path / name).write_bytes((DEFAULT_ARTIFACT_DIR / name).read_bytes())
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["weights_sha256"] = "0" * 64
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"does not match model\.json"):
        load_bundle(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"python -m ml_service\.train"):
        load_bundle(tmp_path / "missing")


def test_the_train_command_writes_a_loadable_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--out", str(tmp_path), "--epochs", "1", "--max-candles", "600", "--split", "2024-01-15T00:00:00"])
    out = capsys.readouterr().out
    bundle = load_bundle(tmp_path)
    assert re.search(r"wrote .* \(direction-mlp-\S+\)", out)
    assert "Out-of-sample directional accuracy" in out
    assert bundle.metadata.split_time == "2024-01-15T00:00:00+00:00"


def test_features_are_scale_free() -> None:
    series = load_all()["BTC"]
    window = torch.tensor(series.rows[100:125], dtype=torch.float64)
    scaled = window.clone()
    scaled[:, :4] *= 1000
    features = window_features(window.unsqueeze(0))
    assert features.shape == (1, input_dim(24))
    assert torch.allclose(features, window_features(scaled.unsqueeze(0)), atol=1e-5)
    assert torch.isfinite(features).all()


def test_a_batched_prediction_matches_one_asset_at_a_time(bundle: ModelBundle) -> None:
    data = load_all()
    windows = torch.stack([torch.tensor(data[s].rows[500:525], dtype=torch.float64) for s in ("BTC", "ETH", "SOL")])
    together = bundle.predict(windows)
    alone = [bundle.predict(windows[i : i + 1])[0] for i in range(3)]
    for a, b in zip(together, alone, strict=True):
        assert a.prob_up == pytest.approx(b.prob_up, abs=1e-6)


def test_the_policy_buys_confident_risers_within_cash_and_sells_expected_fallers(
    series: dict[str, CandleSeries],
) -> None:
    body = decision_body(series, cash=1000.0, positions={"SOL": 2.123456789})
    request = DecisionRequest.model_validate(body)
    predictions = {
        "BTC": Prediction(0.8, 0.01),
        "ETH": Prediction(0.7, 0.005),
        "XRP": Prediction(0.65, 0.001),  # above the threshold, but only the best two are bought
        "BNB": Prediction(0.5, 0.0),
        "SOL": Prediction(0.2, -0.01),
    }
    plan = plan_orders(request, predictions, Thresholds(buy_above=0.6, sell_below=0.4, max_buys=2))
    sides = {(o.side, o.symbol) for o in plan.orders}
    assert sides == {("SELL", "SOL"), ("BUY", "BTC"), ("BUY", "ETH")}
    [sell] = [o for o in plan.orders if o.side == "SELL"]
    assert str(sell.quantity) == "2.12345678"  # rounded down to the satoshi, never more than held
    sol_price = body["assets"][3]["candles"][-1]["close"]
    cash_after_sell = 1000 + 2.12345678 * sol_price * (1 - 0.0005) * (1 - 0.001)
    buys = [o.notional_usd for o in plan.orders if o.side == "BUY"]
    assert all(b is not None and b.as_tuple().exponent >= -2 for b in buys)
    assert sum(float(b) * 1.001 for b in buys if b is not None) <= cash_after_sell
    assert plan.confidence == pytest.approx(0.6)
    assert [s.action for s in plan.signals] == ["HOLD", "BUY", "BUY", "SELL", "HOLD"]
    assert "Orders: SELL SOL" in plan.reasoning


def test_the_policy_holds_when_nothing_crosses_a_threshold(series: dict[str, CandleSeries]) -> None:
    request = DecisionRequest.model_validate(decision_body(series))
    predictions = {a.symbol: Prediction(0.5, 0.0) for a in request.assets}
    plan = plan_orders(request, predictions, Thresholds(0.6, 0.4, 2))
    assert plan.orders == []
    assert plan.reasoning.endswith("hold.")


def test_the_device_is_a_setting_with_cpu_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings(MlService__ApiKey="k").device == "cpu"
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="no CUDA device is available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="MlService__Device must be"):
        ServiceSettings(MlService__ApiKey="k", MlService__Device="gpu")


def _write_candles(path: Path, times: list[datetime]) -> None:
    import gzip

    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write("timestamp,open,high,low,close,volume\n")
        for i, t in enumerate(times):
            close = 100.0 + (i * 13) % 5
            handle.write(f"{t.isoformat().replace('+00:00', 'Z')},{close - 0.5},{close + 1},{close - 1},{close},10\n")


def test_training_and_evaluation_run_across_a_gap_without_a_window_over_it(tmp_path: Path) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    hours = [h for h in range(200) if not 60 <= h < 70]  # a 10-hour maintenance gap
    _write_candles(tmp_path / "BTC_1h.csv.gz", [start + timedelta(hours=h) for h in hours])
    series = load_all(tmp_path)
    assert series["BTC"].gaps() == [(start + timedelta(hours=59), start + timedelta(hours=70))]

    config = TrainConfig(window=4, epochs=1, split_time=start + timedelta(hours=100))
    train_split, test_split, _, _ = build_splits(series, config)

    # 6-candle windows (4 + 1 inputs, 1 target) on consecutive hours only: targets 5..59 and 75..99 for training
    # (none of hours 60..74 has 5 consecutive candles before it); test windows start at 100..194 as without a gap.
    closes = {h: 100.0 + (i * 13) % 5 for i, h in enumerate(hours)}
    flat = {h for h in hours if h - 1 in closes and closes[h] == closes[h - 1]}
    train_targets = [t for t in (*range(5, 60), *range(75, 100)) if t not in flat]
    assert len(train_split.next_return) == len(train_targets)
    assert len(test_split.next_return) == len([t for t in range(105, 200) if t not in flat])

    _net, metadata = train(config, series)  # trains and evaluates on the data both sides of the gap
    assert metadata["test"].samples == len(test_split.next_return)  # type: ignore[attr-defined]
    assert metadata["train"].samples == len(train_targets)  # type: ignore[attr-defined]


def test_a_series_out_of_order_or_off_the_grid_is_refused(tmp_path: Path) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    _write_candles(tmp_path / "BTC_1h.csv.gz", [start, start + timedelta(hours=2), start + timedelta(hours=1)])
    with pytest.raises(ValueError, match="duplicate or disorder"):
        load_all(tmp_path)
    _write_candles(tmp_path / "BTC_1h.csv.gz", [start, start + timedelta(minutes=90)])
    with pytest.raises(ValueError, match="off the 1:00:00 grid"):
        load_all(tmp_path)
