"""Features of one window of candles: the same function builds the training set and serves each request.

A window is `W + 1` consecutive candles (oldest first); from it come `W` one-step log returns. Everything is
scale-free (returns normalised by the window's own volatility, volume relative to the window's mean), so one
model serves every asset whatever its price or volume units.
"""

from __future__ import annotations

import math

import torch

OHLCV = 5  # columns: open, high, low, close, volume
CLIP = 10.0
PER_STEP = ("return_over_vol", "range_over_mean_range", "log_volume_minus_mean")
GLOBAL = ("log_volatility", "trend_z")


def feature_names(window: int) -> list[str]:
    return [f"{name}[t-{window - 1 - i}]" for name in PER_STEP for i in range(window)] + list(GLOBAL)


def input_dim(window: int) -> int:
    return len(PER_STEP) * window + len(GLOBAL)


def window_features(ohlcv: torch.Tensor) -> torch.Tensor:
    """[..., W + 1, 5] candles (float64) -> [..., 3W + 2] features (float32). Prices must be > 0."""
    _, high, low, close, volume = ohlcv.unbind(-1)
    window = close.shape[-1] - 1
    returns = torch.log(close[..., 1:] / close[..., :-1])
    ranges = torch.log(high[..., 1:] / low[..., 1:])
    log_volume = torch.log1p(volume[..., 1:])
    volatility = returns.std(dim=-1, keepdim=True).clamp_min(1e-5)
    features = torch.cat(
        [
            (returns / volatility).clamp(-CLIP, CLIP),
            (ranges / ranges.mean(dim=-1, keepdim=True).clamp_min(1e-9) - 1).clamp(-CLIP, CLIP),
            (log_volume - log_volume.mean(dim=-1, keepdim=True)).clamp(-CLIP, CLIP),
            torch.log(volatility),
            (returns.sum(dim=-1, keepdim=True) / (volatility * math.sqrt(window))).clamp(-CLIP, CLIP),
        ],
        dim=-1,
    )
    return features.to(torch.float32)


def volatility_of(ohlcv: torch.Tensor) -> torch.Tensor:
    """The per-window volatility that scales the model's normalised return back to a log return: [...]."""
    close = ohlcv[..., 3]
    return torch.log(close[..., 1:] / close[..., :-1]).std(dim=-1).clamp_min(1e-5)
