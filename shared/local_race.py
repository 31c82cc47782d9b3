"""The local race: `python -m shared.local_race` (what `make run` starts).

Fires the same three timer jobs as Azure from an in-process scheduler on a simulated clock: each tick is one
simulated cycle (market data -> agents -> equity), then a pause of `Local__SecondsPerSimulatedHour` (scaled to
the cycle length). Serves the same FastAPI app on http://HOST:7071/api from a second process on the same
database (`shared.local_api_process`), so requests never slow the cycles. The simulated clock lives in the
database (the latest recorded cycle), so stopping with Ctrl-C and running again resumes the same race.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from shared.background_statistics import BackgroundStatistics
from shared.bootstrap import Container, bootstrap, set_container
from shared.config import Settings
from shared.console_logging import OneLineFormatter, configure_console_logging
from shared.local_api_process import NO_DASHBOARD_HINT, serve_api_beside
from shared.local_processes import (  # re-exported: the local race's helper processes lived here
    LOCAL_LLM_OFF,
    LocalLlm,
    MlServiceProcess,
    MlServiceStartError,
    port_is_free,
    start_local_llm,
    start_ml_service,
)

if TYPE_CHECKING:
    from shared.domain.model import Agent
    from shared.services.backtest import BacktestProgress, BacktestReport
    from shared.services.cycle import CycleReport

__all__ = [
    "LOCAL_LLM_OFF",
    "NO_DASHBOARD_HINT",
    "LocalLlm",
    "LocalRaceOptions",
    "MlServiceProcess",
    "MlServiceStartError",
    "OneLineFormatter",
    "fast_forward",
    "local_llm_url",
    "main",
    "parse_until",
    "prepare",
    "resume_time",
    "run_simulated_cycles",
    "serve",
    "start_local_llm",
    "start_ml_service",
]

log = logging.getLogger("trading_race.local")


@dataclass
class LocalRaceOptions:
    seconds_per_cycle: float
    max_cycles: int | None  # None: until the replay data runs out or Ctrl-C
    serve_http: bool


def prepare(settings: Settings, *, ml_unavailable: str | None = None, local_llm: LocalLlm | None = None) -> Container:
    """Migrate the database, wire the app and seed assets and agents (all idempotent). The ML agent is active
    when `CustomMlAgent__BaseUrl` is set; otherwise inactive, with `ml_unavailable` (or a default) as reason.
    LLM agents are active when their provider is configured (a key, or an endpoint), the local one when its
    server runs; otherwise inactive with the reason."""
    from shared.adapters.agents.llm.providers import llm_seed_agents
    from shared.adapters.db.migrate import upgrade
    from shared.adapters.market_data.replay_setup import race_assets, with_replay_data
    from shared.services.seed import CUSTOM_ML_NOT_CONFIGURED, DEFAULT_AGENTS, seed

    local_llm = local_llm or LocalLlm()
    upgrade(settings.database_url)
    container = bootstrap(settings)
    container.settings = settings = with_replay_data(settings, container.market_data)  # your own data's start
    seed(
        uow_factory=container.uow_factory,
        rules=settings.race.rules(),
        assets=race_assets(settings, container.market_data),
        agents=(*DEFAULT_AGENTS, *llm_seed_agents(settings), *_local_llm_agents(settings, local_llm)),
        custom_ml_url=settings.custom_ml.base_url,
        custom_ml_unavailable=ml_unavailable or CUSTOM_ML_NOT_CONFIGURED,
        llm_activation=_llm_activation(settings, local_llm),
    )
    set_container(container)
    return container


def local_llm_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1"  # where LocalLlamaServer(port=port) serves


def _local_llm_agents(settings: Settings, local_llm: LocalLlm) -> tuple[Agent, ...]:
    from shared.adapters.agents.llm.providers import local_smollm2_agent

    if not local_llm.enabled:
        return ()
    agent = local_smollm2_agent(local_llm.base_url or local_llm_url(settings.local.local_llm_port))
    if local_llm.base_url is None:
        agent = replace(agent, active=False, inactive_reason=local_llm.unavailable)
    return (agent,)


def _llm_activation(settings: Settings, local_llm: LocalLlm) -> Callable[[Agent], tuple[bool, str | None]]:
    """Each LLM agent's (active, reason) in this run: the provider's configuration decides, except for the
    local agent, which races only while its server runs, at the address the agent was seeded with."""
    from shared.adapters.agents.llm.providers import LOCAL_SMOLLM2_AGENT_NAME, llm_activation

    def activation(agent: Agent) -> tuple[bool, str | None]:
        if agent.name != LOCAL_SMOLLM2_AGENT_NAME:
            return llm_activation(agent, settings)
        if local_llm.base_url is None:
            return False, local_llm.unavailable
        if agent.params.get("base_url") != local_llm.base_url:
            return False, (
                f"not available: the agent calls {agent.params.get('base_url')} but the local server is at "
                f"{local_llm.base_url} (set Local__LocalLlmPort back)"
            )
        return True, None

    return activation


def resume_time(container: Container) -> datetime:
    """Where the simulated clock stands: the cycle after the latest recorded one, or the replay start."""
    step = timedelta(minutes=container.settings.race.cycle_minutes)
    with container.uow_factory() as uow:
        latest = uow.cycles.latest_time()
    if latest is None:
        return container.cycle_time(container.settings.market_data.replay_start)
    return latest + step


async def run_simulated_cycles(container: Container, options: LocalRaceOptions, stop: asyncio.Event) -> int:
    """Fire the timer jobs cycle after cycle on the simulated clock; returns the number of cycles run."""
    step = timedelta(minutes=container.settings.race.cycle_minutes)
    sim_time = resume_time(container)
    cycles = 0
    log.info("race clock at %s (simulated); one cycle every %.2fs", sim_time.isoformat(), options.seconds_per_cycle)
    statistics = BackgroundStatistics(container)  # computed beside the loop: the cycles never wait for them
    try:
        while not stop.is_set() and (options.max_cycles is None or cycles < options.max_cycles):
            ingest = await asyncio.to_thread(container.run_market_data_job, sim_time)
            cycle = await container.run_agents_job_async(sim_time)
            await asyncio.to_thread(container.run_equity_job, sim_time, refresh_statistics=False)
            statistics.request()
            if ingest.stored == 0 and _replay_exhausted(container, sim_time):
                log.info("replay data ends before %s: the race is over, the API keeps serving", sim_time.isoformat())
                break
            print(progress_line(container, sim_time, cycle), flush=True)
            cycles += 1
            sim_time += step
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=options.seconds_per_cycle)
    finally:
        await asyncio.to_thread(statistics.close)
    return cycles


def _replay_exhausted(container: Container, sim_time: datetime) -> bool:
    with container.uow_factory() as uow:
        assets = uow.assets.list()
        latest = [uow.candles.latest_open_time(a.symbol, container.settings.market_data.interval) for a in assets]
    newest = max((t for t in latest if t is not None), default=None)
    return newest is None or sim_time - newest > timedelta(days=1)


def progress_line(container: Container, sim_time: datetime, cycle: CycleReport) -> str:
    """One line per cycle: time, decisions (and the HOLD fallbacks among them), trades and the current leader."""
    from shared.services.cycle import VOLUNTARY_HOLD

    fallbacks = sum(n for reason, n in cycle.holds.items() if reason != VOLUNTARY_HOLD)
    note = f" | {cycle.note}" if cycle.note else ""
    return (
        f"{sim_time:%Y-%m-%d %H:%M} UTC | decisions {cycle.decided} (fallback holds {fallbacks}) | "
        f"trades {cycle.trades} | rejected {cycle.rejections} | leader: {_leader(container)}{note}"
    )


def fast_forward_line(container: Container, progress: BacktestProgress) -> str:
    """One line per fast-forwarded chunk: its cycles, what they did, and the leader after it."""
    return (
        f"{progress.last:%Y-%m-%d %H:%M} UTC | fast-forward: {progress.cycles} cycles, "
        f"{progress.decisions} decisions, {progress.trades} trades | leader: {_leader(container)}"
    )


def _leader(container: Container) -> str:
    from shared.services.leaderboard import leaderboard

    rows = leaderboard(container.queries, starting_cash=container.settings.race.starting_cash)
    if not rows:
        return "-"
    top = rows[0].summary
    equity = top.equity if top.equity is not None else top.cash
    pct = top.return_pct if top.return_pct is not None else Decimal(0)
    return f"{top.agent.name} ${equity:,.2f} ({pct:+.2f}%)"


def fast_forward(container: Container, until: datetime) -> BacktestReport:
    """Run the race from where it stands up to `until` (exclusive) at full speed, a line per chunk (the
    backtest engine: the same rows the timer jobs would write, one transaction per chunk of cycles)."""
    from shared.services.backtest import BacktestError

    start = resume_time(container)
    if until <= start:
        raise BacktestError(
            f"nothing to fast-forward: the race already stands at {start.isoformat()}, not before {until.isoformat()}"
        )
    last_close = _replay_data_end(container)
    if last_close is not None:
        data_end = container.cycle_time(last_close) + timedelta(minutes=container.settings.race.cycle_minutes)
        if until > data_end:  # past it, every cycle would decide on the same stale prices
            print(
                f"{_replay_data_name(container).capitalize()} end (the last closes at {last_close:%Y-%m-%d %H:%M} "
                "UTC): fast-forwarding "
                f"up to the cycle that sees it, not to {until:%Y-%m-%d %H:%M}",
                flush=True,
            )
            until = data_end
            if until <= start:
                raise BacktestError(
                    f"nothing to fast-forward: the race already stands at {start.isoformat()}, past the end of "
                    f"{_replay_data_name(container)}"
                )
    print(f"Fast-forwarding the race from {start:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC ...", flush=True)
    report = asyncio.run(
        container.run_backtest(
            start, until, on_chunk=lambda chunk: print(fast_forward_line(container, chunk), flush=True)
        )
    )
    print(
        f"Fast-forwarded {report.cycles} cycles in {report.duration_s:.1f}s ({report.decisions} decisions, "
        f"{report.trades} trades, {report.rejections} rejected); the race now stands at "
        f"{resume_time(container):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    return report


def _replay_data_name(container: Container) -> str:
    directory = container.settings.market_data.replay_dir
    return f"the candles in {directory}" if directory is not None else "the bundled candles"


def _replay_data_end(container: Container) -> datetime | None:
    """With the bundled candles (replay mode): when the newest of them closes. None with a live provider."""
    from shared.adapters.market_data.replay import ReplayMarketDataProvider
    from shared.domain.model import interval_delta

    provider = container.market_data
    if not isinstance(provider, ReplayMarketDataProvider):
        return None
    with container.uow_factory() as uow:
        symbols = [asset.symbol for asset in uow.assets.list(active_only=True)]
    last_opens = [found[1] for symbol in symbols if (found := provider.coverage(symbol)) is not None]
    if not last_opens:
        return None
    return max(last_opens) + interval_delta(container.settings.market_data.interval)


def parse_until(text: str) -> datetime:
    """A UTC time for --fast-forward: 2024-07-01, 2024-07-01T12:00, or with an offset (2024-07-01T12:00+02:00)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date or time: {text!r} (use 2024-07-01 or 2024-07-01T12:00, UTC unless an offset is given)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def serve(container: Container, options: LocalRaceOptions, *, verbose: bool = False) -> None:
    """Race until Ctrl-C (the cycle in flight finishes first), serving the API and dashboard from a second
    process (`shared.local_api_process`) on the same database, so that requests never slow the cycles."""
    stop = asyncio.Event()
    _stop_on_signals(stop)
    race = asyncio.create_task(run_simulated_cycles(container, options, stop))
    if not options.serve_http:
        await race
        return
    await serve_api_beside(race, container, stop, verbose=verbose)


def _stop_on_signals(stop: asyncio.Event) -> None:
    """Ctrl-C (or SIGTERM) stops after the cycle in flight; a second Ctrl-C interrupts it."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        print("Stopping after the cycle in flight (Ctrl-C again to stop at once) ...", flush=True)
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)  # the next one raises KeyboardInterrupt as usual

    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not on Windows' loop
            loop.add_signal_handler(number, on_signal)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the AI Trading Race locally on replayed 2024 candles.")
    parser.add_argument("--cycles", type=int, default=None, help="stop after this many cycles")
    parser.add_argument("--seconds-per-cycle", type=float, default=None, help="pause between simulated cycles")
    parser.add_argument("--no-http", action="store_true", help="run the cycles without serving the API")
    parser.add_argument("--setup-only", action="store_true", help="migrate and seed the database, then exit")
    parser.add_argument("--verbose", action="store_true", help="log every job's report, not just one line a cycle")
    parser.add_argument("--no-ml", action="store_true", help="do not start ml_service (the ML agent sits out)")
    parser.add_argument(
        "--fast-forward",
        metavar="UNTIL",
        type=parse_until,
        help="first run every cycle up to UNTIL (e.g. 2024-07-01, UTC) at full speed, then go on as usual",
    )
    args = parser.parse_args(argv)
    if args.cycles is not None and args.cycles < 0:
        parser.error("--cycles must be 0 or more")

    settings = Settings()
    configure_console_logging(settings.log_level, verbose=args.verbose)
    serving = not (args.no_http or args.setup_only)
    if serving and not port_is_free(settings.local.host, settings.local.port):
        print(
            f"error: {settings.local.host}:{settings.local.port} is in use (another race?): stop it, or set "
            "Local__Port to a free port",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(2)
    scale = settings.race.cycle_minutes / 60
    options = LocalRaceOptions(
        seconds_per_cycle=args.seconds_per_cycle
        if args.seconds_per_cycle is not None
        else settings.local.seconds_per_simulated_hour * scale,
        max_cycles=args.cycles,
        serve_http=not args.no_http,
    )
    with contextlib.ExitStack() as stack:  # the helper processes stop however the race ends
        ml_unavailable = None
        if args.no_ml:
            ml_unavailable = "ML service not available: the race was started with --no-ml"
            custom_ml = settings.custom_ml.model_copy(update={"base_url": None})
            settings = settings.model_copy(update={"custom_ml": custom_ml})
        elif not args.setup_only:
            settings, service, ml_unavailable = start_ml_service(settings)
            if service is not None:
                stack.callback(service.stop)
        if args.setup_only:
            local_llm = LocalLlm(
                enabled=settings.local.local_llm,
                unavailable="not available: the local llama.cpp server runs only while the race does",
            )
        else:
            local_llm = start_local_llm(settings, stack)
        from shared.adapters.market_data.replay import ReplayDataError

        try:
            container = prepare(settings, ml_unavailable=ml_unavailable, local_llm=local_llm)
        except ReplayDataError as exc:  # your own candle files: which file and line, nothing stored
            print(f"error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        for line in getattr(container.market_data, "quality_lines", list)():
            print(line, flush=True)
        if args.setup_only:
            print(f"Database ready: {settings.database_url.split('@')[-1]}", flush=True)
            return
        with contextlib.suppress(KeyboardInterrupt):
            if args.fast_forward is not None:
                from shared.services.backtest import BacktestConflictError, BacktestError

                try:
                    fast_forward(container, args.fast_forward)
                except (BacktestError, BacktestConflictError) as exc:
                    print(f"error: {exc}", file=sys.stderr, flush=True)
                    raise SystemExit(2 if isinstance(exc, BacktestError) else 1) from None
            asyncio.run(serve(container, options, verbose=args.verbose))
    print("Race stopped. Run `make run` again to resume from the database.", flush=True)


if __name__ == "__main__":
    main()
