"""A real cycle (shared.services.cycle.run_cycle) of LLM agents built by the registry against the stand-in:
one provider hangs, the others finish on time, and every decision carries its audit trail."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from shared.config import LlamaSettings, RaceSettings, Settings
from shared.domain.model import RejectionReason
from shared.domain.rules import RaceRules
from shared.services.cycle import CycleReport
from shared.services.seed import DEFAULT_ASSETS
from tests.fakes import FakeUnitOfWorkFactory
from tests.llm.helpers import CYCLE, run_one_llm_cycle
from tests.llm.standin import Reply, StandInServer, decision_reply, groq_429, server_error

AGENT_TIMEOUT_S = 4.0  # the agents' own deadline is 2 s (the margin is 2 s)
BUY_BTC = (
    '{"orders": [{"symbol": "BTC", "side": "BUY", "notional_usd": 10000}], "reasoning": "trend", "confidence": 0.7}'
)


def market_with_llm_agents(models: list[str]) -> tuple[FakeUnitOfWorkFactory, list[int]]:
    from shared.adapters.market_data.replay import ReplayMarketDataProvider

    uow = FakeUnitOfWorkFactory()
    uow.add_assets(*DEFAULT_ASSETS)
    uow.add_candles(
        ReplayMarketDataProvider().fetch_candles(DEFAULT_ASSETS, start=CYCLE - timedelta(hours=60), end=CYCLE)
    )
    ids = [uow.add_agent(f"LLM {model}", provider="llama", model=model).id for model in models]
    return uow, ids


def run_llm_cycle(standin: StandInServer, uow: FakeUnitOfWorkFactory) -> tuple[CycleReport, float]:
    settings = Settings(
        Llama=LlamaSettings(Provider="openai_compatible", BaseUrl=standin.base_url, MaxRetries=1),
        Race=RaceSettings(AgentTimeoutSeconds=AGENT_TIMEOUT_S),
    )
    started = time.perf_counter()
    report = run_one_llm_cycle(uow, settings)
    return report, time.perf_counter() - started


def test_one_hanging_provider_does_not_delay_the_others(standin: StandInServer) -> None:
    uow, (fast, slow, hanging, _broken) = market_with_llm_agents(["fast", "slow", "hanging", "broken"])
    standin.always("fast", decision_reply(BUY_BTC))
    standin.always("slow", decision_reply(BUY_BTC, delay_s=0.4))
    standin.always("hanging", Reply(hang=True))
    standin.always("broken", server_error(503))

    report, wall_s = run_llm_cycle(standin, uow)

    assert report.decided == 4
    assert report.failed == ()
    assert wall_s < AGENT_TIMEOUT_S  # the hanging agent gave up at its own deadline, before the cycle's
    assert report.holds == {"timeout": 1, "provider error: HTTP 503: Service Unavailable": 1}
    assert report.trades == 2
    decisions = {agent_id: record.decision for (agent_id, _), record in uow.state.decisions.items()}
    assert decisions[hanging].hold_reason == "timeout"
    assert decisions[hanging].latency_ms is not None
    assert decisions[hanging].latency_ms < AGENT_TIMEOUT_S * 1000  # its own deadline, not the cycle's cut
    for agent_id in (fast, slow):
        decision = decisions[agent_id]
        assert decision.prompt is not None
        assert decision.raw_response == BUY_BTC
        assert decision.prompt_tokens == 177
        assert decision.completion_tokens == 87
        assert decision.latency_ms is not None
    assert uow.state.portfolios[fast].positions["BTC"].quantity > 0
    assert uow.state.portfolios[hanging].cash == RaceRules().starting_cash


def test_rate_limited_and_malformed_agents_hold_while_the_rest_trade(standin: StandInServer) -> None:
    uow, _ids = market_with_llm_agents(["ok", "limited", "prose"])
    standin.always("ok", decision_reply(BUY_BTC))
    standin.always("limited", groq_429(headers={"retry-after": "3"}))  # past the 2 s deadline: no retry
    standin.always("prose", decision_reply("I would buy Bitcoin because it is going up."))

    report, _ = run_llm_cycle(standin, uow)

    assert report.trades == 1
    assert report.holds == {
        "rate limited": 1,
        "invalid output: no JSON decision object in 'I would buy Bitcoin because it is going up.'": 1,
    }


def test_parser_rejections_are_recorded_and_counted_as_rejections(standin: StandInServer) -> None:
    uow, (mixed, all_bad) = market_with_llm_agents(["mixed", "all-bad"])
    standin.always(
        "mixed",
        decision_reply(
            '{"orders": [{"symbol": "BTC", "side": "BUY", "notional_usd": 10000},'
            ' {"symbol": "DOGE", "side": "BUY", "quantity": 1}], "reasoning": "r"}'
        ),
    )
    standin.always("all-bad", decision_reply('{"orders": [{"symbol": "ETH", "side": "BUY"}], "reasoning": "r"}'))

    report, _ = run_llm_cycle(standin, uow)

    assert report.trades == 1
    assert report.rejections == 2
    records = {agent_id: record for (agent_id, _), record in uow.state.decisions.items()}
    assert [(r.reason, r.detail) for r in records[mixed].rejections] == [
        (RejectionReason.UNKNOWN_SYMBOL, "order 2: DOGE BUY: unknown symbol (tradable: BNB BTC ETH SOL XRP)")
    ]
    assert [r.reason for r in records[all_bad].rejections] == [RejectionReason.INVALID_SIZE]
    assert records[all_bad].decision.hold_reason == (
        "invalid output: every order rejected (1 order; order 1: ETH BUY: needs exactly one of quantity or "
        "notional_usd)"
    )
    assert report.holds == {records[all_bad].decision.hold_reason: 1}


BASELINES = ("buy_and_hold", "momentum", "mean_reversion", "random", "always_hold")


def test_a_hanging_agent_delays_no_baseline_and_the_cycle_ends_by_its_deadline(standin: StandInServer) -> None:
    uow, (hanging,) = market_with_llm_agents(["hanging"])
    baselines = [uow.add_agent(f"Baseline {name}", provider="baseline", model=name).id for name in BASELINES]
    standin.always("hanging", Reply(hang=True))
    started = datetime.now(UTC)

    report, wall_s = run_llm_cycle(standin, uow)

    assert report.decided == 6
    assert report.failed == ()
    assert wall_s < AGENT_TIMEOUT_S  # by the cycle's deadline (the hanging agent gives up at its own, 2 s)
    records = {agent_id: record for (agent_id, _), record in uow.state.decisions.items()}
    for agent_id in baselines:  # recorded within a baseline's normal latency, not after the hanging call
        assert (records[agent_id].decided_at - started).total_seconds() < 1.0, records[agent_id].decision
    assert records[hanging].decision.hold_reason == "timeout"
    assert (records[hanging].decided_at - started).total_seconds() >= 1.5
    assert report.holds["timeout"] == 1
