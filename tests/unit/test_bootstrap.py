"""The container's agents job closes the agents' connection pools on the loop it ran on, whatever happens."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, cast

import pytest

from shared.bootstrap import Container
from shared.config import Settings
from shared.domain.model import Agent
from shared.services.ports import AgentModelClient
from tests.fakes import T0, FakeUnitOfWorkFactory, ScriptedClient


class ClosingClients:
    def __init__(self) -> None:
        self.closed_on: list[asyncio.AbstractEventLoop] = []

    def __call__(self, agent: Agent) -> AgentModelClient:
        return ScriptedClient()

    async def aclose(self) -> None:
        self.closed_on.append(asyncio.get_running_loop())


def _container(clients: object) -> Container:
    return Container(
        settings=Settings(),
        uow_factory=FakeUnitOfWorkFactory(),
        queries=cast(Any, None),
        market_data=cast(Any, None),
        agent_clients=cast(Any, clients),
    )


def test_every_agents_job_closes_the_pools_on_its_own_loop() -> None:
    clients = ClosingClients()
    container = _container(clients)
    container.run_agents_job(T0)
    container.run_agents_job(T0)
    assert len(clients.closed_on) == 2
    assert clients.closed_on[0] is not clients.closed_on[1]  # a new loop per job, as in Functions


def test_the_pools_are_closed_when_the_job_fails() -> None:
    clients = ClosingClients()
    with pytest.raises(ValueError, match="naive cycle_time"):
        _container(clients).run_agents_job(datetime(2024, 1, 1))  # naive: the failure under test
    assert len(clients.closed_on) == 1


def test_clients_without_pools_need_no_closing() -> None:
    assert _container(lambda agent: ScriptedClient()).run_agents_job(T0).decided == 0


def test_the_agents_job_runs_again_on_a_transient_database_error() -> None:
    from sqlalchemy.exc import OperationalError

    from shared.adapters.db.retry import TransientDbRetry

    class DownOnce(FakeUnitOfWorkFactory):
        calls = 0

        def __call__(self):  # type: ignore[no-untyped-def]
            DownOnce.calls += 1
            if DownOnce.calls == 1:
                raise OperationalError(
                    "connect", {}, ConnectionRefusedError("server closed"), connection_invalidated=True
                )
            return super().__call__()

    container = _container(lambda agent: ScriptedClient())
    container.uow_factory = DownOnce()
    container.db_retry = TransientDbRetry(base_delay=0, max_delay=0)

    assert container.run_agents_job(T0).decided == 0
    assert DownOnce.calls > 1


def test_psycopg_operational_errors_are_transient() -> None:
    import psycopg
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from shared.adapters.db.retry import is_transient_db_error

    assert is_transient_db_error(OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")))
    assert is_transient_db_error(OperationalError("SELECT 1", {}, psycopg.errors.QueryCanceled("statement timeout")))
    assert not is_transient_db_error(ProgrammingError("SELECT x", {}, psycopg.ProgrammingError("no column x")))


def test_the_default_schedules_ingest_then_decide_then_mark_within_the_hour() -> None:
    schedules = Settings().schedules

    def first_minute(expression: str) -> int:
        seconds, minutes, *hours_and_days = expression.split()
        assert seconds == "0"
        assert hours_and_days == ["*", "*", "*", "*"]
        return int(minutes.split(",")[0].split("/")[0].replace("*", "0"))

    ingest, decide, mark = (
        first_minute(s) for s in (schedules.market_data, schedules.run_agents, schedules.equity_snapshot)
    )
    assert ingest < decide < mark  # the cycle sees the candle closing at its hour; its marks follow its trades
    container = _container(lambda agent: ScriptedClient())
    fired = T0.replace(minute=decide)
    assert container.cycle_time(fired) == T0  # the cycle is still named by the hour
