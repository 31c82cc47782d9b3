"""`python -m ml_service.train`: train the direction model on the bundled 2024 candles, deterministically.

Time-based split with no leakage: a sample is (window of W + 1 candles -> the next candle's direction), over
consecutive candles only: a window that would span a gap in the data (an exchange's maintenance) is left out of
training and evaluation, the data on both sides of the gap is used. Training
samples are those whose *target* candle opens before `--split`; test samples are those whose *first input*
candle opens at or after it, so no test input overlaps any training target. Feature standardisation is fitted on
the training samples only. Fixed seed, one CPU thread, deterministic algorithms: the same command writes the
same weights (the version in model.json embeds their digest).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from ml_service.data import DEFAULT_CANDLES_DIR, CandleSeries, load_all
from ml_service.features import feature_names, input_dim, volatility_of, window_features
from ml_service.model import DEFAULT_ARTIFACT_DIR, DirectionNet, Metrics, ModelMetadata, save_artifact

log = logging.getLogger("ml_service.train")
MODEL_NAME = "direction-mlp"


@dataclass(frozen=True)
class TrainConfig:
    window: int = 24
    hidden: tuple[int, ...] = (32, 16)
    dropout: float = 0.1
    epochs: int = 12
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    return_loss_weight: float = 0.1
    seed: int = 20240101
    split_time: datetime = datetime(2024, 9, 1, tzinfo=UTC)
    # Trade only on the model's most confident calls: thresholds are these quantiles of its training-set output.
    buy_quantile: float = 0.9
    sell_quantile: float = 0.1
    max_candles: int | None = None  # per asset, from the start: small slices for tests
    symbols: tuple[str, ...] = field(default_factory=tuple)  # empty: every bundled asset


@dataclass
class Split:
    windows: torch.Tensor  # [N, W + 1, 5] float64
    next_return: torch.Tensor  # [N] float64 log return of the target candle
    symbols: list[str]

    @property
    def up(self) -> torch.Tensor:
        return (self.next_return > 0).to(torch.float32)


def build_splits(series: Mapping[str, CandleSeries], config: TrainConfig) -> tuple[Split, Split, str, str]:
    """(train, test, data start, data end); flat target candles (no direction) are left out of both."""
    size = config.window + 2
    parts: dict[str, list[tuple[torch.Tensor, torch.Tensor, str]]] = {"train": [], "test": []}
    starts, ends = [], []
    for symbol in sorted(series):
        if config.symbols and symbol not in config.symbols:
            continue
        s = series[symbol]
        rows = s.rows[: config.max_candles] if config.max_candles else s.rows
        times = s.open_times[: len(rows)]
        if len(rows) < size:
            continue
        starts.append(times[0])
        ends.append(times[-1])
        data = torch.tensor(rows, dtype=torch.float64)
        windows = data.unfold(0, size, 1).permute(0, 2, 1)  # [N, W + 2, 5]
        close = windows[:, :, 3]
        next_return = torch.log(close[:, -1] / close[:, -2])
        first_open = torch.tensor([t.timestamp() for t in times[: len(windows)]], dtype=torch.float64)
        target_open = torch.tensor([t.timestamp() for t in times[size - 1 :]], dtype=torch.float64)
        split = config.split_time.timestamp()
        # A window whose candles are not consecutive spans a gap: its returns would mix two periods.
        consecutive = (target_open - first_open) == (size - 1) * s.interval.total_seconds()
        if not bool(consecutive.all()):
            log.info("%s: %d windows span a gap in the data and are left out", symbol, int((~consecutive).sum()))
        keep = (next_return != 0) & consecutive
        for name, mask in (("train", target_open < split), ("test", first_open >= split)):
            chosen = keep & mask
            if bool(chosen.any()):
                parts[name].append((windows[chosen, :-1].contiguous(), next_return[chosen], symbol))
    if not parts["train"]:
        raise ValueError("no training samples: check --split and the data range")

    def merge(items: list[tuple[torch.Tensor, torch.Tensor, str]]) -> Split:
        if not items:
            return Split(torch.empty(0, config.window + 1, 5, dtype=torch.float64), torch.empty(0), [])
        return Split(
            torch.cat([w for w, _, _ in items]),
            torch.cat([r for _, r, _ in items]),
            [sym for w, _, sym in items for _ in range(len(w))],
        )

    return merge(parts["train"]), merge(parts["test"]), min(starts).isoformat(), max(ends).isoformat()


def _metrics(net: DirectionNet, split: Split) -> tuple[Metrics, torch.Tensor]:
    net.eval()
    with torch.inference_mode():
        prob = torch.sigmoid(net(window_features(split.windows))[:, 0]) if len(split.windows) else torch.empty(0)
    up = split.up.bool()
    n = len(up)
    if n == 0:
        empty = dict.fromkeys(("accuracy", "always_up_accuracy", "previous_direction_accuracy"), 0.0)
        return Metrics(samples=0, reversal_accuracy=0, up_fraction=0, per_symbol_accuracy={}, **empty), prob
    correct = (prob > 0.5) == up
    last_return = torch.log(split.windows[:, -1, 3] / split.windows[:, -2, 3])
    per_symbol: dict[str, float] = {}
    for symbol in sorted(set(split.symbols)):
        mask = torch.tensor([s == symbol for s in split.symbols])
        per_symbol[symbol] = round(float(correct[mask].float().mean()), 4)
    metrics = Metrics(
        samples=n,
        accuracy=round(float(correct.float().mean()), 4),
        always_up_accuracy=round(float(up.float().mean()), 4),
        previous_direction_accuracy=round(float(((last_return > 0) == up).float().mean()), 4),
        reversal_accuracy=round(float(((last_return < 0) == up).float().mean()), 4),
        up_fraction=round(float(up.float().mean()), 4),
        per_symbol_accuracy=per_symbol,
    )
    return metrics, prob


def train(
    config: TrainConfig, series: Mapping[str, CandleSeries] | None = None
) -> tuple[DirectionNet, dict[str, object]]:
    """Train and evaluate; returns the network and its metadata (without the weights' digest)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # reductions in one thread: bit-identical weights on any machine
    torch.use_deterministic_algorithms(True)
    try:
        return _train(config, series if series is not None else load_all(DEFAULT_CANDLES_DIR))
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)


def _train(config: TrainConfig, series: Mapping[str, CandleSeries]) -> tuple[DirectionNet, dict[str, object]]:
    train_split, test_split, data_start, data_end = build_splits(series, config)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = DirectionNet(input_dim(config.window), config.hidden, config.dropout)

    features = window_features(train_split.windows)
    net.feature_mean.copy_(features.mean(dim=0))  # type: ignore[operator]
    net.feature_std.copy_(features.std(dim=0).clamp_min(1e-6))  # type: ignore[operator]
    up = train_split.up
    return_z = (train_split.next_return / volatility_of(train_split.windows)).clamp(-10, 10).to(torch.float32)

    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    direction_loss, return_loss = nn.BCEWithLogitsLoss(), nn.SmoothL1Loss()
    for epoch in range(config.epochs):
        net.train()
        order = torch.randperm(len(features), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            out = net(features[batch])
            loss = direction_loss(out[:, 0], up[batch]) + config.return_loss_weight * return_loss(
                out[:, 1], return_z[batch]
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.detach().item() * len(batch)
        log.info("epoch %d/%d: loss %.5f", epoch + 1, config.epochs, total / len(order))

    train_metrics, train_prob = _metrics(net, train_split)
    test_metrics, _ = _metrics(net, test_split)
    buy_above = round(max(float(torch.quantile(train_prob.double(), config.buy_quantile)), 0.5), 4)
    sell_below = round(min(float(torch.quantile(train_prob.double(), config.sell_quantile)), 0.5), 4)
    t = test_metrics
    beats = t.accuracy - max(t.always_up_accuracy, t.previous_direction_accuracy)
    metadata: dict[str, object] = {
        "name": MODEL_NAME,
        "interval": "1h",
        "window": config.window,
        "feature_names": feature_names(config.window),
        "hidden": list(config.hidden),
        "dropout": config.dropout,
        "symbols": sorted(set(train_split.symbols)),
        "data_start": data_start,
        "data_end": data_end,
        "split_time": config.split_time.isoformat(),
        "seed": config.seed,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "weight_decay": config.weight_decay,
        "torch_version": torch.__version__.split("+")[0],
        "buy_above": buy_above,
        "sell_below": sell_below,
        "train": train_metrics,
        "test": test_metrics,
        "notes": (
            f"Out-of-sample directional accuracy {test_metrics.accuracy:.2%} on {test_metrics.samples} hourly "
            f"candles after {config.split_time:%Y-%m-%d}, {beats:+.2%} against the better of always-up "
            f"({test_metrics.always_up_accuracy:.2%}) and previous-direction "
            f"({test_metrics.previous_direction_accuracy:.2%}); a plain reversal rule (bet against the previous "
            f"candle) scores {t.reversal_accuracy:.2%}, {t.accuracy - t.reversal_accuracy:+.2%} against the model. "
            "Hourly direction is close to a coin flip and fees are not counted here: treat this as a demonstration "
            "model, not an edge."
        ),
    }
    return net, metadata


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the custom_ml direction model on the bundled candles.")
    parser.add_argument("--out", type=Path, default=DEFAULT_ARTIFACT_DIR, help="artifact folder (model.pt + json)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_CANDLES_DIR)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--split", type=datetime.fromisoformat, default=TrainConfig.split_time, help="UTC time")
    parser.add_argument("--max-candles", type=int, default=None, help="use only the first N candles per asset")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    split = args.split if args.split.tzinfo else args.split.replace(tzinfo=UTC)
    config = TrainConfig(seed=args.seed, epochs=args.epochs, split_time=split, max_candles=args.max_candles)
    net, metadata = train(config, load_all(args.data_dir))
    saved: ModelMetadata = save_artifact(args.out, net, metadata)
    print(f"wrote {args.out}/ ({saved.version})")
    print(saved.notes)
    print(f"thresholds: buy above p={saved.buy_above}, sell below p={saved.sell_below}")


if __name__ == "__main__":
    main()
