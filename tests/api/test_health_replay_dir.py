"""`/api/health` on your own candle files: the `market_data` detail carries their gaps and zero-volume bars."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.adapters.health import dependency_checks
from shared.adapters.market_data.replay_dir import DirectoryReplayProvider
from shared.api.app import create_app
from tests.api.conftest import FakeContainer, client_for

pytestmark = pytest.mark.anyio
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "replay_dir"


async def test_health_reports_the_gaps_of_the_replayed_files(container: FakeContainer) -> None:
    sources = SimpleNamespace(
        settings=container.settings, market_data=DirectoryReplayProvider(FIXTURE), agent_clients=None
    )
    container.dependencies = dependency_checks(sources)  # the real checks, on the real files

    async with client_for(create_app(lambda: container)) as client:  # type: ignore[arg-type, return-value]
        response = await client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"  # gaps are facts of the data, not a failure
    detail = body["details"]["market_data"]
    assert detail.startswith("replay: 3 assets; 12 missing candles, 3 zero-volume bars in ")
    assert "SOL: gaps 2020-12-21T15:00:00+00:00..2020-12-21T17:00:00+00:00 2020-12-25T02:00:00+00:00" in detail
    assert "zero volume 2020-12-21T14:00:00+00:00..2020-12-21T14:00:00+00:00" in detail
