"""Test-wide guards. Outbound network is blocked except loopback (pytest-socket `--allow-hosts` in
pyproject.toml), so every external service must be a local stand-in. Settings never read the developer's
own local.settings.json or environment by accident."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

_SETTING_PREFIXES = (
    "connectionstrings__",
    "race__",
    "marketdata__",
    "schedules__",
    "api__",
    "local__",
    "custommlagent__",
    "coingecko__",
    "mlservice__",
    "redis__",
    "llama__",
    "openai__",
    "azureopenai__",
)


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    for name in list(os.environ):
        if name.lower().startswith(_SETTING_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    from shared import config

    monkeypatch.setattr(config, "LOCAL_SETTINGS_FILE", tmp_path_factory.getbasetemp() / "no-local.settings.json")
    return
