"""The one place that builds the object graph from `Settings` (DESIGN.md section 9).

Nothing here runs at import time: `get_container()` builds the graph on first use (the first trigger of a
warm Functions worker), so `import function_app` stays cheap. Heavy modules are imported inside functions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from shared.config import Settings

if TYPE_CHECKING:
    from shared.adapters.db.data_version import DatabaseDataVersion
    from shared.domain.model import AgentDecision
    from shared.services.backtest import BacktestProgress, BacktestReport
    from shared.services.cycle import CycleReport
    from shared.services.equity import EquityReport
    from shared.services.ingest import IngestReport
    from shared.services.ports import (
        AgentClientFactory,
        Clock,
        CycleMetrics,
        MarketDataProvider,
        RaceQueries,
        UnitOfWorkFactory,
    )
    from shared.services.race_clock import Job
    from shared.services.race_statistics import StatisticsReport
    from shared.services.replay import ReplayResult
    from shared.services.statistics_ports import StatisticsRepository


logger = logging.getLogger(__name__)
T = TypeVar("T")
DbRetry = Callable[..., Any]


def _run_once(work: Callable[[], T], *, what: str = "") -> T:
    return work()


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Container:
    """The wired application: ports plus the three timer jobs, each a call into one service."""

    settings: Settings
    uow_factory: UnitOfWorkFactory
    queries: RaceQueries
    market_data: MarketDataProvider
    agent_clients: AgentClientFactory
    # Runs a whole idempotent job again on a transient database error (Azure SQL); once elsewhere.
    db_retry: DbRetry = _run_once
    metrics: CycleMetrics | None = None
    # What the API's rendered-response cache keys its answers by; None: no cache.
    data_version: DatabaseDataVersion | None = None
    wall_clock: Clock = field(default_factory=SystemClock)
    # Where the per-cycle statistics are stored (None: not computed, the API says so).
    statistics: StatisticsRepository | None = None
    # Where `/api/health` gets its non-critical checks when another process makes the outbound calls (the local
    # race's API process asks the race's process); None: this process's own clients.
    dependency_checks_source: Callable[[], dict[str, tuple[str, str | None]]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def dependency_checks(self) -> dict[str, tuple[str, str | None]]:
        """The non-critical dependencies' health for `/api/health`: name -> (status, detail)."""
        from shared.adapters.health import dependency_checks

        if self.dependency_checks_source is not None:
            return self.dependency_checks_source()
        return dependency_checks(self)

    def cycle_time(self, now: datetime) -> datetime:
        """The cycle a timer firing at `now` belongs to: `now` floored to the cycle length (UTC)."""
        from shared.domain.cycles import floor_time

        return floor_time(now, timedelta(minutes=self.settings.race.cycle_minutes))

    def admin_job_time(self, job: Job, requested: datetime | None) -> datetime:
        """The time a job triggered by hand runs at, on the race's clock (`shared.services.race_clock`):
        `requested`, or the job's next due time; raises `JobTimeRefused` for a time the race cannot run at."""
        from shared.services.race_clock import RaceClock, admin_job_time

        clock = RaceClock(
            replay=self.settings.market_data.provider == "replay",
            cycle=timedelta(minutes=self.settings.race.cycle_minutes),
            replay_start=self.settings.market_data.replay_start,
            interval=self.settings.market_data.interval,
            wall_clock=self.wall_clock.now,
        )
        return admin_job_time(uow_factory=self.uow_factory, clock=clock, job=job, requested=requested)

    def run_market_data_job(self, now: datetime) -> IngestReport:
        from shared.services.ingest import IngestMetrics, ingest_market_data

        return self.db_retry(  # type: ignore[no-any-return]
            lambda: ingest_market_data(
                uow_factory=self.uow_factory,
                provider=self.market_data,
                now=now,
                interval=self.settings.market_data.interval,
                backfill=timedelta(hours=self.settings.market_data.backfill_hours),
                metrics=self.metrics if isinstance(self.metrics, IngestMetrics) else None,
            ),
            what="market-data job",
        )

    def run_agents_job(self, cycle_time: datetime) -> CycleReport:
        return asyncio.run(self.run_agents_job_async(cycle_time))

    async def run_agents_job_async(self, cycle_time: datetime) -> CycleReport:
        from shared.services.cycle import run_cycle

        race = self.settings.race
        answers: dict[int, AgentDecision] = {}  # kept across tries: an agent answered once is not asked again

        def cycle() -> Awaitable[CycleReport]:
            return run_cycle(
                uow_factory=self.uow_factory,
                clients=self.agent_clients,
                cycle_time=cycle_time,
                rules=race.rules(),
                interval=self.settings.market_data.interval,
                snapshot_candles=race.snapshot_candles,
                agent_timeout_s=race.agent_timeout_seconds,
                max_concurrency=race.max_concurrent_agents,
                metrics=self.metrics,
                answers=answers,
            )

        try:
            # Run again on a transient database error, as the other two jobs are (a re-run is idempotent).
            retry_async = getattr(self.db_retry, "run_async", None)
            return await (retry_async(cycle, what="run-agents job") if retry_async else cycle())
        finally:
            # Functions runs every timer on a new event loop: connections pooled on this one would be dead by
            # the next job, so close them while their loop still runs (clients and breakers are kept).
            close = getattr(self.agent_clients, "aclose", None)
            if close is not None:
                await close()

    async def run_backtest(
        self,
        start: datetime,
        end: datetime,
        *,
        chunk_cycles: int | None = None,
        on_chunk: Callable[[BacktestProgress], None] | None = None,
    ) -> BacktestReport:
        """Run the race's cycles from `start` to `end` at full speed (shared.services.backtest)."""
        from shared.services.backtest import DEFAULT_CHUNK_CYCLES, run_backtest

        race = self.settings.race
        try:
            report = await run_backtest(
                uow_factory=self.uow_factory,
                provider=self.market_data,
                clients=self.agent_clients,
                start=start,
                end=end,
                cycle=timedelta(minutes=race.cycle_minutes),
                rules=race.rules(),
                interval=self.settings.market_data.interval,
                snapshot_candles=race.snapshot_candles,
                backfill=timedelta(hours=self.settings.market_data.backfill_hours),
                agent_timeout_s=race.agent_timeout_seconds,
                max_concurrency=race.max_concurrent_agents,
                chunk_cycles=chunk_cycles or DEFAULT_CHUNK_CYCLES,
                on_chunk=on_chunk,
            )
            # Once for the whole run, not per chunk: only the final figures are ever read.
            await asyncio.to_thread(self.refresh_statistics)
            return report
        finally:
            close = getattr(self.agent_clients, "aclose", None)  # as in run_agents_job_async
            if close is not None:
                await close()

    async def replay_decision(
        self, decision_id: int, *, agent_id: int | None = None, provider: str | None = None, model: str | None = None
    ) -> ReplayResult:
        """Rerun a stored decision and return it beside the original, writing nothing (shared.services.replay).
        The replay's clients come from a registry of their own: a model asked for a replay never replaces a
        racing agent's cached client (its breaker and limiter state)."""
        from shared.adapters.agents.factory import AgentClientRegistry
        from shared.adapters.db.replay_store import SqlAlchemyReplayStore
        from shared.services.replay import replay_decision

        engine = getattr(self.uow_factory, "engine", None)
        if engine is None:
            raise RuntimeError("replay reads the race's SQL database; this container has none")
        clients = AgentClientRegistry.from_settings(self.settings)
        try:
            return await replay_decision(
                store=SqlAlchemyReplayStore(engine),
                clients=clients,
                decision_id=decision_id,
                agent_id=agent_id,
                provider=provider,
                model=model,
                timeout_s=self.settings.race.agent_timeout_seconds,
            )
        finally:
            await clients.aclose()

    def run_equity_job(self, at: datetime, *, refresh_statistics: bool = True) -> EquityReport:
        from dataclasses import replace

        from shared.services.equity import snapshot_equity

        report: EquityReport = self.db_retry(
            lambda: snapshot_equity(uow_factory=self.uow_factory, at=at, interval=self.settings.market_data.interval),
            what="equity-snapshot job",
        )
        if not refresh_statistics:  # the caller computes them apart (shared.background_statistics)
            return report
        # The marks of this cycle have landed: the statistics follow them (once; nothing new, nothing done).
        statistics = self.refresh_statistics()
        return replace(report, statistics=statistics.as_dict()) if statistics is not None else report

    def refresh_statistics(self, *, force: bool = False) -> StatisticsReport | None:
        """Recompute the stored statistics if new equity marks landed. A failure is logged and reported as
        None, never raised: the marks are stored either way and the next cycle tries again."""
        if self.statistics is None:
            return None
        from shared.services.race_statistics import refresh_race_statistics

        repository, race = self.statistics, self.settings.race
        try:
            return self.db_retry(  # type: ignore[no-any-return]
                lambda: refresh_race_statistics(
                    repository=repository,
                    starting_cash=race.starting_cash,
                    cycle_minutes=race.cycle_minutes,
                    clock=self.wall_clock,
                    force=force,
                ),
                what="statistics refresh",
            )
        except Exception:
            logger.exception("the race statistics could not be computed; the previous set is still served")
            return None


def load_settings() -> Settings:
    """Settings from the environment, checked for unresolved Key Vault references, with missing secrets read
    from `KeyVault__Uri` when it is set."""
    from shared.adapters.secrets import SECRET_SETTINGS, check_no_unresolved_references, resolver_for

    check_no_unresolved_references(os.environ)  # also covers settings only other processes read
    settings = Settings()
    vault = settings.key_vault
    if vault.uri is None:
        return settings
    missing = [
        name
        for name, target in SECRET_SETTINGS.items()
        if target is not None and getattr(getattr(settings, target[0]), target[1]) is None
    ]
    if not missing:
        return settings
    return settings.with_secrets(resolver_for(vault.uri, ttl=vault.cache_ttl_seconds).resolve(missing))


def bootstrap(settings: Settings | None = None) -> Container:
    """Wire real adapters from settings. Engines and clients are created here, never at import."""
    from shared.adapters.agents.factory import AgentClientRegistry
    from shared.adapters.db.data_version import DatabaseDataVersion
    from shared.adapters.db.engine import make_engine
    from shared.adapters.db.queries import SqlAlchemyRaceQueries
    from shared.adapters.db.statistics_store import SqlAlchemyStatisticsRepository
    from shared.adapters.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
    from shared.adapters.market_data.factory import make_market_data_provider
    from shared.adapters.telemetry import configure_telemetry, race_metrics

    settings = settings or load_settings()
    connection_string = settings.applicationinsights_connection_string
    configure_telemetry(connection_string.get_secret_value() if connection_string else None)
    engine = make_engine(
        settings.database_url,
        timeouts=(settings.database.connect_timeout_seconds, settings.database.statement_timeout_seconds),
    )
    db_retry: DbRetry = _run_once
    if engine.dialect.name in ("mssql", "postgresql"):
        from shared.adapters.db.retry import TransientDbRetry

        db_retry = TransientDbRetry()
    return Container(
        settings=settings,
        uow_factory=SqlAlchemyUnitOfWorkFactory(engine),
        queries=SqlAlchemyRaceQueries(engine),
        market_data=make_market_data_provider(settings),
        agent_clients=AgentClientRegistry.from_settings(settings),
        db_retry=db_retry,
        metrics=race_metrics(),
        statistics=SqlAlchemyStatisticsRepository(engine),
        data_version=DatabaseDataVersion(engine, max_age_s=settings.api.response_cache_max_age_seconds),
    )


_container: Container | None = None
_container_lock = threading.Lock()


def get_container() -> Container:
    """The process-wide container, built once on first use (Functions workers reuse it while warm)."""
    global _container
    if _container is None:
        with _container_lock:
            if _container is None:
                _container = bootstrap()
    return _container


def set_container(container: Container | None) -> None:
    """Replace the process-wide container (tests and the local runner)."""
    global _container
    _container = container
