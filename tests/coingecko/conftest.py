"""CoinGecko tests: no CoinGecko setting leaks in from the developer's environment; a stand-in per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.coingecko.helpers import FakeTime
from tests.coingecko.standin import CoinGeckoStandIn, running_standin


@pytest.fixture(autouse=True)
def _no_coingecko_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().startswith("coingecko__"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def standin() -> Iterator[CoinGeckoStandIn]:
    yield from running_standin()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
