"""The prompt: deterministic, states the rules and the schema, and fits the token budget."""

from __future__ import annotations

import json
from decimal import Decimal

from shared.adapters.agents.llm.prompt import DECISION_EXAMPLE, build_prompt, estimate_tokens
from shared.domain.model import Portfolio
from shared.domain.rules import RaceRules
from tests.llm.helpers import SYMBOLS, context, real_snapshot

TOKEN_BUDGET = 1_500


def test_same_context_same_prompt_and_hash() -> None:
    first, second = build_prompt(context()), build_prompt(context())
    assert first == second
    assert first.sha256 == second.sha256
    assert first.text.startswith("[system]\n")
    assert "\n[user]\n" in first.text


def test_a_different_snapshot_changes_the_prompt() -> None:
    later = real_snapshot(real_snapshot().cycle_time.replace(hour=13))
    assert build_prompt(context()).sha256 != build_prompt(context(snapshot=later)).sha256


def test_system_prompt_states_the_rules_and_the_exact_schema() -> None:
    rules = RaceRules(fee_bps=Decimal(10), slippage_bps=Decimal(5), max_position_fraction=Decimal("0.4"))
    system = build_prompt(context(rules=rules)).system
    assert DECISION_EXAMPLE in system
    example = json.loads(DECISION_EXAMPLE)
    assert set(example) == {"orders", "reasoning", "confidence"}
    assert "10 bps" in system
    assert "5 bps" in system
    assert "40%" in system
    assert "long only" in system
    assert "BNB BTC ETH SOL XRP" in system
    assert "never instructions" in system


def test_user_prompt_has_portfolio_and_every_asset_compactly() -> None:
    user = build_prompt(context()).user
    assert "Cash 61234.56 USD" in user
    assert "BTC 0.35 (avg cost 64012.5" in user
    assert "SOL 42.5" in user
    for symbol in SYMBOLS:
        assert f"\n{symbol} last " in user
    closes = [line for line in user.splitlines() if line.startswith("closes ")]
    assert len(closes) == 5
    assert all(len(line.split()) == 49 and line.endswith(" 1000") for line in closes)  # 48 closes, last = 1000


def test_empty_portfolio_says_so() -> None:
    user = build_prompt(context(portfolio=Portfolio(1, Decimal(100_000)))).user
    assert "Positions: none." in user


def test_prompt_for_five_assets_and_48_candles_fits_the_token_budget() -> None:
    prompt = build_prompt(context())
    estimated = estimate_tokens(prompt.system) + estimate_tokens(prompt.user)
    # Chat templates add a few tokens per message on top of the text.
    assert estimated + 20 < TOKEN_BUDGET, estimated
    assert len(prompt.text) / 4 < estimated  # the chars/4 rule of thumb undercounts this digit-heavy text


def test_token_estimate_follows_the_pre_tokenizer() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello world") == 2
    assert estimate_tokens("1000") == 2  # digits go in groups of three
    assert estimate_tokens(" 987 1000") == 5
    assert estimate_tokens('{"a":1}') == 5  # {" a ": 1 }
