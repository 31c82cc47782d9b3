"""LLM tests: provider settings from the developer's environment never leak in; a stand-in server per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.llm.standin import StandInServer, running_standin

_LLM_SETTING_PREFIXES = ("llama__", "openai__", "azureopenai__")


@pytest.fixture(autouse=True)
def _no_llm_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().startswith(_LLM_SETTING_PREFIXES):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def standin() -> Iterator[StandInServer]:
    yield from running_standin()
