"""The admin key is compared in constant time: `hmac.compare_digest` decides every attempt, right or wrong, and a
key no str comparison could handle (non-ASCII) is a 401, not a 500."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import httpx
import pytest

from shared.api import deps
from tests.api.conftest import ADMIN_KEY, FakeContainer, assert_error

pytestmark = pytest.mark.anyio


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every (presented, configured) pair the admin check hands to compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    real: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def spy(presented: bytes, configured: bytes) -> bool:
        calls.append((presented, configured))
        return real(presented, configured)

    monkeypatch.setattr(deps.hmac, "compare_digest", spy)
    return calls


@pytest.mark.parametrize("presented", ["wrong", ADMIN_KEY[:-1], ADMIN_KEY + "x", "t" * len(ADMIN_KEY)])
async def test_every_wrong_key_is_decided_by_compare_digest(
    client: httpx.AsyncClient, compared: list[tuple[bytes, bytes]], presented: str, container: FakeContainer
) -> None:
    response = await client.post("/api/admin/jobs/market-data", headers={"x-admin-key": presented})
    assert_error(response, 401, "unauthorized")
    assert compared == [(presented.encode(), ADMIN_KEY.encode())]
    assert container.job_calls == []


async def test_the_right_key_is_decided_by_compare_digest_too(
    client: httpx.AsyncClient, compared: list[tuple[bytes, bytes]], container: FakeContainer
) -> None:
    response = await client.post("/api/admin/jobs/equity-snapshot", headers={"x-admin-key": ADMIN_KEY})
    assert response.status_code == 200, response.text
    assert compared, "the key was not compared at all"
    assert set(compared) == {(ADMIN_KEY.encode(), ADMIN_KEY.encode())}  # once per check the route makes
    assert [job for job, _ in container.job_calls] == ["equity-snapshot"]


async def test_a_non_ascii_key_is_a_401_compared_as_bytes(
    client: httpx.AsyncClient, compared: list[tuple[bytes, bytes]]
) -> None:
    key = "clé-ünïcode"
    response = await client.post("/api/admin/jobs/run-agents", headers={"x-admin-key": key.encode()})
    assert_error(response, 401, "unauthorized")
    assert len(compared) == 1
    assert compared[0][1] == ADMIN_KEY.encode()
