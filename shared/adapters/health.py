"""What `/api/health` reports besides the database: the market data provider, each model provider's circuit
breaker, and ml_service's readiness. All of them are non-critical (the API still serves data without them), so
a problem makes the service "degraded", not unavailable. Nothing here calls a paid or rate-limited API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from shared.adapters.resilience import BreakerState, CircuitBreaker

if TYPE_CHECKING:
    from shared.config import Settings

logger = logging.getLogger(__name__)

ML_READY_TIMEOUT_S = 2.0
Check = tuple[str, str | None]  # (status: ok | degraded | unavailable, detail)
HttpFactory = Callable[[], httpx.Client]
_SEVERITY = {"ok": 0, "degraded": 1, "unavailable": 2}


def breaker_check(breaker: CircuitBreaker) -> Check:
    state = breaker.state
    status = {BreakerState.CLOSED: "ok", BreakerState.HALF_OPEN: "degraded"}.get(state, "unavailable")
    return status, f"circuit {state.value}"


def market_data_check(provider: Any) -> Check:
    name = getattr(provider, "name", type(provider).__name__)
    resilience = getattr(provider, "resilience", None)
    if resilience is not None and isinstance(getattr(resilience, "breaker", None), CircuitBreaker):
        status, detail = breaker_check(resilience.breaker)
        problems = getattr(provider, "problems", None)
        if status == "ok" and problems:
            # CoinGecko answers but nothing usable came of it: the race is deciding on ever staler prices.
            symbols = ", ".join(sorted(problems))
            return "degraded", f"{name}: no usable candles for {symbols} in the latest run"
        return status, f"{name}: {detail}"
    available = getattr(provider, "available_symbols", None)
    if available is not None:
        symbols = available()
        if not symbols:
            return "unavailable", f"{name}: no data files"
        quality = getattr(provider, "data_quality", None)
        if quality is not None:  # your own candle files: their gaps and zero-volume bars are facts to show
            return "ok", f"{name}: {len(symbols)} assets; {replay_quality_text(quality())}"
        return "ok", f"{name}: {len(symbols)} assets"
    return "ok", name


def replay_quality_text(quality: dict[str, Any]) -> str:
    """`DirectoryReplayProvider.data_quality()` in one line: totals, then each symbol's gaps and zero bars."""
    parts = [
        f"{quality['missing_candles']} missing candles, {quality['zero_volume_bars']} zero-volume bars"
        f" in {quality['directory']}"
    ]
    for series in quality["symbols"]:
        gaps = " ".join(f"{gap['from']}..{gap['to']}" for gap in series["gaps"]) or "none"
        zero = " ".join(f"{run['from']}..{run['to']}" for run in series["zero_volume"]) or "none"
        parts.append(f"{series['symbol']}: gaps {gaps}; zero volume {zero}")
    return " | ".join(parts)


def model_provider_checks(agent_clients: Any) -> dict[str, Check]:
    """One entry per LLM (provider, model) in use and one for the ML service's clients (the worst breaker)."""
    checks: dict[str, Check] = {}
    resources = getattr(agent_clients, "llm_resources", None)
    for (provider, _url, model), state in sorted(getattr(resources, "_states", {}).items()):
        checks[f"llm:{provider}:{model}"] = breaker_check(state.breaker)
    ml_breakers = [
        client.breaker
        for _agent, client in list(getattr(agent_clients, "_clients", {}).values())
        if type(client).__name__ == "CustomMlClient"
    ]
    if ml_breakers:
        checks["ml_client"] = max((breaker_check(b) for b in ml_breakers), key=lambda c: _SEVERITY[c[0]])
    return checks


def ml_service_check(base_url: str, http_factory: HttpFactory | None = None) -> Check:
    from shared.contracts.ml_decisions import READY_PATH

    factory = http_factory or (lambda: httpx.Client(timeout=ML_READY_TIMEOUT_S, trust_env=False))
    try:
        with factory() as client:
            response = client.get(f"{base_url}{READY_PATH}")
    except httpx.HTTPError as exc:
        return "unavailable", f"not reachable ({type(exc).__name__})"
    if response.status_code == 200:
        return "ok", "ready"
    return "unavailable", f"not ready (HTTP {response.status_code})"


class HealthSources(Protocol):
    """What the checks read (the bootstrap's Container has it): this module never imports the bootstrap."""

    @property
    def settings(self) -> Settings: ...

    @property
    def market_data(self) -> Any: ...

    @property
    def agent_clients(self) -> Any: ...


def dependency_checks(container: HealthSources, *, http_factory: HttpFactory | None = None) -> dict[str, Check]:
    checks: dict[str, Check] = {}
    probes: list[tuple[str, Callable[[], Check | dict[str, Check]]]] = [
        ("market_data", lambda: market_data_check(container.market_data)),
        ("models", lambda: model_provider_checks(container.agent_clients)),
    ]
    base_url = container.settings.custom_ml.base_url
    if base_url:
        probes.append(("ml_service", lambda: ml_service_check(base_url, http_factory)))
    for name, probe in probes:
        try:
            result = probe()
        except Exception:
            logger.exception("health check %s failed", name)
            result = ("unavailable", "check failed")
        if isinstance(result, dict):
            checks.update(result)
        else:
            checks[name] = result
    return checks
