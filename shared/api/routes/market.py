from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Path, Query

from shared.api.contract import SETTING
from shared.api.deps import EndQuery, QueriesDep, SettingsDep, StartQuery, ensure_time_range
from shared.api.errors import InvalidRequestError, NotFoundError
from shared.api.schemas import CandlePublic, CandlesPublic, ErrorPublic, PricePublic, PricesPublic

router = APIRouter(prefix="/market", tags=["market"])

# Spelled out (not built from INTERVAL_SECONDS) so OpenAPI lists the choices; a test keeps the two in step.
CandleInterval = Literal["30m", "1h", "4h", "1d"]
CANDLE_INTERVALS: tuple[str, ...] = get_args(CandleInterval)

Symbol = Annotated[str, Path(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$", description="e.g. BTC")]


@router.get("/prices")
def read_prices(queries: QueriesDep) -> PricesPublic:
    """The latest close per asset and the close time it comes from."""
    return PricesPublic(items=[PricePublic.from_row(p) for p in queries.latest_prices()])


@router.get("/{symbol}/candles", responses={404: {"model": ErrorPublic, "description": "Unknown symbol."}})
def read_candles(
    symbol: Symbol,
    queries: QueriesDep,
    settings: SettingsDep,
    interval: Annotated[
        CandleInterval,
        Query(
            description="Candle length: the one the market data is stored at.", json_schema_extra={SETTING: "interval"}
        ),
    ] = "1h",
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            description="At most this many candles (<= Api__MaxCandles).",
            json_schema_extra={SETTING: "max_candles"},
        ),
    ] = None,
) -> CandlesPublic:
    """Stored candles of one asset, oldest first."""
    ensure_time_range(start, end)
    max_candles = settings.api.max_candles
    if limit is not None and limit > max_candles:
        raise InvalidRequestError(f"query.limit: must be at most {max_candles}, got {limit}")
    stored = settings.market_data.interval
    if interval != stored:
        raise InvalidRequestError(f"query.interval: only {stored} candles are stored, got {interval}")
    symbol = symbol.upper()
    if symbol not in queries.known_symbols():
        raise NotFoundError(f"unknown symbol {symbol!r}")
    candles = queries.candles(symbol, interval, start=start, end=end, limit=limit or max_candles)
    return CandlesPublic(symbol=symbol, interval=interval, items=[CandlePublic.from_candle(c) for c in candles])
