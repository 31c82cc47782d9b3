"""The replay inputs kept with every decision: what the cycle attaches, how they travel as exact JSON, and what
the clients say about their model (never a secret)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from shared.adapters.agents.baselines import build_baseline
from shared.adapters.agents.llm.providers import build_llama_client
from shared.adapters.db.decision_inputs import NO_INPUTS, replay_input_values
from shared.adapters.http import public_url
from shared.config import LlamaSettings, Settings
from shared.domain.decision_inputs import DecisionInputs, InputsFormatError, inputs_from_json
from shared.domain.model import Agent, AgentDecision, Order, Portfolio, Position, Rejection, RejectionReason, Side
from shared.domain.rules import RaceRules
from shared.services.cycle import run_cycle
from shared.services.decision_inputs import SnapshotWindow, with_inputs
from shared.services.ports import AgentContext
from tests.llm.helpers import real_snapshot
from tests.unit.test_cycle import BUY_ETH, CYCLE, RULES, agents_with, market

PORTFOLIO = Portfolio(
    7,
    Decimal("0.00000001"),
    {"BTC": Position(Decimal("1.5E+1"), Decimal("42000.12345678")), "ETH": Position(Decimal("2"), Decimal("3000"))},
    fees_paid=Decimal("12.3"),
    trade_count=4,
)
ODD_RULES = RaceRules(
    starting_cash=Decimal("5000.5"),
    fee_bps=Decimal("7.5"),
    slippage_bps=Decimal(0),
    min_notional_usd=Decimal(1),
    max_position_fraction=Decimal("0.25"),
    max_orders_per_decision=3,
)


def test_the_cycle_keeps_the_portfolio_before_the_decision_not_the_copy_the_agent_changed() -> None:
    class Vandal:
        """Buys, and scribbles on the portfolio it was handed (it must not reach what is stored)."""

        def decide_now(self, context: AgentContext) -> AgentDecision:
            context.portfolio.cash = Decimal(1)
            return AgentDecision((BUY_ETH,), "buy", 0.7)

        async def decide(self, context: AgentContext) -> AgentDecision:
            return self.decide_now(context)

    uow = market()
    asyncio.run(
        run_cycle(
            uow_factory=uow,
            clients=agents_with(uow, Vandal()),
            cycle_time=CYCLE,
            rules=RULES,
            interval="1h",
            snapshot_candles=24,
            agent_timeout_s=5,
            max_concurrency=4,
        )
    )

    [record] = uow.state.decisions.values()
    inputs = record.decision.inputs
    assert inputs is not None
    assert inputs.portfolio == Portfolio(1, RULES.starting_cash)  # before the buy, before the scribble
    assert uow.state.portfolios[1].cash < RULES.starting_cash  # the buy did execute
    assert inputs.rules == RULES
    assert (inputs.symbols, inputs.interval, inputs.candles) == (("BTC", "ETH"), "1h", 24)
    assert inputs.model == {"provider": "fake", "model": "scripted", "params": {}}  # no model_settings(): none


def test_with_inputs_keeps_every_field_of_the_decision() -> None:
    values: dict[str, Any] = {
        "orders": (Order("BTC", Side.BUY, quantity=Decimal("0.1")),),
        "reasoning": "r",
        "confidence": 0.4,
        "hold_reason": "h",
        "prompt": "p",
        "raw_response": "raw",
        "latency_ms": 1.5,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "cost_usd": Decimal("0.01"),
        "rejections": (Rejection(None, RejectionReason.INVALID_ORDER, "x"),),
    }
    assert {f.name for f in dataclasses.fields(AgentDecision)} == {*values, "inputs"}  # a new field: add it here
    decision = AgentDecision(**values)
    snapshot = real_snapshot()
    agent = Agent(7, "m", "baseline", "momentum")

    kept = with_inputs(
        decision,
        agent=agent,
        window=SnapshotWindow.of(snapshot),
        portfolio=PORTFOLIO,
        rules=RULES,
        client=build_baseline(agent),
    )

    assert {name: getattr(kept, name) for name in values} == values
    assert kept.inputs is not None
    assert kept.inputs.portfolio == PORTFOLIO
    assert kept.inputs.portfolio is not PORTFOLIO
    assert kept.inputs.model["client"] == {
        "kind": "baseline",
        "strategy": "momentum",
        "lookback": 24,
        "min_momentum": "0.01",
        "top_n": 2,
    }
    assert (kept.inputs.candles, kept.inputs.interval) == (48, "1h")


def test_inputs_travel_as_exact_json_and_come_back_equal() -> None:
    inputs = DecisionInputs(PORTFOLIO, ODD_RULES, ("BTC", "ETH"), "1h", 48, {"provider": "baseline", "params": {}})
    values = json.loads(json.dumps(replay_input_values(inputs)))  # what a JSON column gives back

    back = inputs_from_json(
        7,
        portfolio=values["portfolio_before"],
        race_settings=values["race_settings"],
        model_settings=values["model_settings"],
    )

    assert back == inputs
    assert back.portfolio.positions["BTC"].quantity == Decimal(15)
    assert values["portfolio_before"]["cash"] == "1E-8"  # a string: no float ever touches it
    assert replay_input_values(None) == NO_INPUTS == dict.fromkeys(NO_INPUTS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v["race_settings"].update(version=99), "unknown replay inputs version 99"),
        (lambda v: v["race_settings"]["rules"].pop("fee_bps"), "race settings cannot be read: KeyError"),
        (lambda v: v["race_settings"]["rules"].update(fee_bps="lots"), "race settings cannot be read"),
        (lambda v: v["race_settings"]["snapshot"].update(symbols=[]), "snapshot window is empty"),
        (lambda v: v["portfolio_before"].update(cash="NaN"), "stored portfolio cannot be read"),
        (lambda v: v["portfolio_before"]["positions"].update(BTC={}), "stored portfolio cannot be read: KeyError"),
    ],
)
def test_unreadable_inputs_are_refused_with_the_reason(change: Any, message: str) -> None:
    inputs = DecisionInputs(PORTFOLIO, ODD_RULES, ("BTC",), "1h", 48, {})
    values = json.loads(json.dumps(replay_input_values(inputs)))
    change(values)
    with pytest.raises(InputsFormatError, match=message):
        inputs_from_json(
            7,
            portfolio=values["portfolio_before"],
            race_settings=values["race_settings"],
            model_settings=values["model_settings"],
        )


def test_an_llm_client_describes_its_model_without_its_key() -> None:
    key = "gsk_live_secret_value_123"
    settings = Settings(Llama=LlamaSettings(ApiKey=SecretStr(key), Temperature=0.7, MaxTokens=256))
    client = build_llama_client(Agent(3, "Llama", "llama", "llama-3.3-70b-versatile"), settings)

    described = client.model_settings()  # type: ignore[attr-defined]

    assert described == {
        "kind": "llm",
        "endpoint": "https://api.groq.com/openai/v1/chat/completions",
        "model": "llama-3.3-70b-versatile",
        "temperature": 0.7,
        "max_tokens": 256,
        "json_mode": True,
        "prompt_version": 1,
    }
    assert key not in json.dumps(described)


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://user:pw@example.test:8443/v1/x?api-key=s3cret", "https://example.test:8443/v1/x"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        (
            "https://h.example/openai/deployments/d/chat/completions?api-version=2024-10-21",
            "https://h.example/openai/deployments/d/chat/completions",
        ),
    ],
)
def test_public_urls_carry_no_credentials_or_query(url: str, public: str) -> None:
    assert public_url(url) == public
