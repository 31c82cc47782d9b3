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
