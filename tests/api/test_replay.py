"""`POST /api/admin/decisions/{decision_id}/replay` on a real race (SQLite, the bundled candles, the baselines):
the admin key first, documented errors, the original and the counterfactual side by side, nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from shared.adapters.db.models import CandleRow, DecisionRow, EquitySnapshotRow, PortfolioRow, TradeRow
from shared.api.app import create_app
from shared.bootstrap import Container
from shared.config import ApiSettings, ConnectionStrings, MarketDataSettings, Settings
from shared.local_race import prepare
from tests.api.conftest import ADMIN_KEY, assert_error, client_for

pytestmark = pytest.mark.anyio

START = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
AUTH = {"x-admin-key": ADMIN_KEY}


@pytest.fixture
def race(tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        connection_strings=ConnectionStrings(trading_db=f"sqlite:///{tmp_path / 'race.db'}"),
        market_data=MarketDataSettings(replay_start=START),
        api=ApiSettings(AdminKey=ADMIN_KEY),
    )
    container = prepare(settings)

    async def run() -> None:
        for at in (START, START + HOUR, START + 2 * HOUR):
            container.run_market_data_job(at)
            await container.run_agents_job_async(at)
            container.run_equity_job(at)

    asyncio.run(run())
    yield container
    container.uow_factory.engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture
async def client(race: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app(lambda: race)) as client:
        yield client


def first_decision(race: Container, model: str) -> int:
    with race.uow_factory() as uow:
        agent_id = next(a.id for a in uow.agents.list() if a.model == model)
        statement = select(func.min(DecisionRow.id)).where(DecisionRow.agent_id == agent_id)
        decision_id: int = uow.connection.execute(statement).scalar_one()  # type: ignore[attr-defined]
    return decision_id


def counts(race: Container) -> list[int]:
    with race.uow_factory() as uow:
        connection: Any = uow.connection  # type: ignore[attr-defined]
        return [
            connection.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (DecisionRow, TradeRow, PortfolioRow, EquitySnapshotRow, CandleRow)
        ]


def replay_url(decision_id: int) -> str:
    return f"/api/admin/decisions/{decision_id}/replay"


@pytest.mark.parametrize("body", [b"{not json", b'{"agent_id": "x"}', b"[]"])
async def test_no_admin_key_is_401_whatever_the_body(client: httpx.AsyncClient, race: Container, body: bytes) -> None:
    response = await client.post(
        replay_url(first_decision(race, "momentum")), content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 401, "unauthorized")
    wrong = await client.post(replay_url(1), headers={"x-admin-key": "not-the-key"})
    assert_error(wrong, 401, "unauthorized")


async def test_a_decision_replays_beside_the_original_and_nothing_is_written(
    client: httpx.AsyncClient, race: Container
) -> None:
    decision_id = first_decision(race, "buy_and_hold")
    before = counts(race)

    response = await client.post(replay_url(decision_id), headers=AUTH)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision_id"] == decision_id
    assert body["identical"] is True
    assert body["same_model"] is True
    assert body["prompt_identical"] is None
    assert body["original"] == body["counterfactual"]
    [buy] = body["original"]["orders"]
    assert (buy["symbol"], buy["side"]) == ("BTC", "BUY")
    [fill] = body["counterfactual"]["fills"]
    assert fill["symbol"] == "BTC"
    assert fill["price"].replace(".", "").isdigit()  # an exact decimal string
    assert body["original_model"]["client"] == {"kind": "baseline", "strategy": "buy_and_hold", "symbol": "BTC"}
    assert counts(race) == before


async def test_another_agent_or_model_gives_the_counterfactual(client: httpx.AsyncClient, race: Container) -> None:
    decision_id = first_decision(race, "buy_and_hold")
    with race.uow_factory() as uow:
        holder = next(a.id for a in uow.agents.list() if a.model == "always_hold")
    before = counts(race)

    by_agent = (await client.post(replay_url(decision_id), json={"agent_id": holder}, headers=AUTH)).json()
    by_model = await client.post(
        replay_url(decision_id), json={"provider": "baseline", "model": "always_hold"}, headers=AUTH
    )

    assert by_agent["identical"] is False
    assert by_agent["counterfactual"]["orders"] == []
    assert by_agent["counterfactual"]["fills"] == []
    assert len(by_agent["original"]["fills"]) == 1
    assert by_model.status_code == 200, by_model.text
    assert by_model.json()["counterfactual"] == by_agent["counterfactual"]
    assert by_model.json()["replay_agent"] == "baseline always_hold"
    assert counts(race) == before


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"agent_id": 99_999}, "agent 99999 not found"),
        ({"provider": "acme", "model": "x"}, "provider"),
        ({"provider": "baseline"}, "provider and model go together"),
        ({"agent_id": 1, "provider": "baseline", "model": "momentum"}, "not both"),
        ({"surprise": 1}, "surprise"),
        ({"agent_id": 0}, "agent_id"),
    ],
)
async def test_a_bad_counterfactual_is_422(
    client: httpx.AsyncClient, race: Container, body: dict[str, Any], mentions: str
) -> None:
    response = await client.post(replay_url(first_decision(race, "momentum")), json=body, headers=AUTH)
    assert_error(response, 422, "validation_error", mentions=mentions)


async def test_unknown_decision_is_404_and_an_absurd_id_422(client: httpx.AsyncClient) -> None:
    assert_error(await client.post(replay_url(10**6), headers=AUTH), 404, "not_found", mentions="decision 1000000")
    assert_error(await client.post(replay_url(2**40), headers=AUTH), 422, "validation_error")


async def test_a_changed_candle_is_409_with_both_hashes(client: httpx.AsyncClient, race: Container) -> None:
    decision_id = first_decision(race, "momentum")
    stored = (await client.post(replay_url(decision_id), headers=AUTH)).json()["snapshot_sha256"]
    with race.uow_factory() as uow:
        uow.connection.execute(  # type: ignore[attr-defined]
            update(CandleRow)
            .where(CandleRow.symbol == "BTC", CandleRow.open_time == START - HOUR)
            .values(volume=CandleRow.volume + 1)
        )
        uow.commit()
    before = counts(race)

    response = await client.post(replay_url(decision_id), headers=AUTH)

    error = assert_error(response, 409, "snapshot_mismatch", mentions=stored)
    assert "the snapshot rebuilt from the stored candles has sha256" in error["message"]
    assert counts(race) == before
