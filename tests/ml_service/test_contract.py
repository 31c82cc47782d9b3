"""The wire contract, from both sides, and the import boundary it stands for: the contract imports neither torch
nor the Functions app's adapters; ml_service imports nothing of shared/ but the contract; the Functions app's
ML client imports no torch."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ml_service.data import CandleSeries
from shared.contracts.ml_decisions import (
    IDEMPOTENCY_KEY_PATTERN,
    DecisionRequest,
    DecisionResponse,
    OrderOut,
    decision_idempotency_key,
)
from tests.ml_service.conftest import decision_body

REPO = Path(__file__).resolve().parents[2]


def _modules_after_import(module: str) -> list[str]:
    probe = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout)
    return modules


def test_the_contract_imports_only_pydantic_and_the_standard_library() -> None:
    modules = _modules_after_import("shared.contracts.ml_decisions")
    ours = [m for m in modules if m.startswith("shared")]
    assert sorted(ours) == ["shared", "shared.contracts", "shared.contracts.ml_decisions"]
    assert not [m for m in modules if m.startswith(("torch", "sqlalchemy", "httpx", "fastapi", "azure"))]


def test_the_functions_side_ml_client_never_imports_torch() -> None:
    modules = _modules_after_import("shared.adapters.agents.custom_ml")
    assert not [m for m in modules if m == "torch" or m.startswith("torch.")]


def test_ml_service_imports_nothing_of_shared_but_the_contract() -> None:
    for path in sorted((REPO / "ml_service").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name == "shared" or name.startswith("shared."):
                    assert name.startswith("shared.contracts"), f"{path.name} imports {name}"
                assert not name.startswith("function_app"), f"{path.name} imports {name}"
    loaded = [m for m in _modules_after_import("ml_service.app") if m.startswith("shared")]
    assert all(m in ("shared", "shared.contracts") or m.startswith("shared.contracts.") for m in loaded), loaded


def test_importing_the_service_does_not_load_the_model() -> None:
    probe = (
        "import gc\nimport ml_service.app\nimport ml_service.model as m\n"
        "print(sum(isinstance(o, m.ModelBundle) for o in gc.get_objects()))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def test_the_idempotency_key_is_stable_per_agent_and_cycle_and_valid_on_the_wire() -> None:
    at = datetime(2024, 3, 1, 12, tzinfo=UTC)
    key = decision_idempotency_key(7, at)
    assert key == "agent-7.cycle-20240301T120000Z"
    assert IDEMPOTENCY_KEY_PATTERN.fullmatch(key)
    assert decision_idempotency_key(7, at.astimezone()) == key  # same instant, any timezone
    assert decision_idempotency_key(8, at) != key


def test_requests_round_trip_and_reject_what_the_service_cannot_use(series: dict[str, CandleSeries]) -> None:
    body = decision_body(series)
    request = DecisionRequest.model_validate(body)
    assert DecisionRequest.model_validate_json(request.model_dump_json()) == request

    def rejected(change: dict[str, Any]) -> str:
        with pytest.raises(ValidationError) as info:
            DecisionRequest.model_validate({**body, **change})
        return str(info.value)

    assert "duplicate symbols" in rejected({"assets": [body["assets"][0], body["assets"][0]]})
    assert "at least 1 item" in rejected({"assets": []})
    reversed_candles = {**body["assets"][0], "candles": body["assets"][0]["candles"][::-1]}
    assert "strictly ascending" in rejected({"assets": [reversed_candles]})
    assert "look-ahead" in rejected({"cycle_time": body["assets"][0]["candles"][-1]["open_time"]})


def test_orders_carry_exactly_one_size_as_decimal_strings() -> None:
    order = OrderOut(symbol="BTC", side="BUY", notional_usd=Decimal("2500.10"))
    assert json.loads(order.model_dump_json())["notional_usd"] == "2500.10"
    with pytest.raises(ValidationError, match="exactly one of quantity or notional_usd"):
        OrderOut(symbol="BTC", side="BUY")
    with pytest.raises(ValidationError, match="exactly one of quantity or notional_usd"):
        OrderOut(symbol="BTC", side="SELL", quantity=Decimal(1), notional_usd=Decimal(1))
    with pytest.raises(ValidationError):
        OrderOut(symbol="BTC", side="SELL", quantity=Decimal(-1))
    response = DecisionResponse(orders=[order], reasoning="r", confidence=0.5, model_version="v", signals=[])
    assert DecisionResponse.model_validate_json(response.model_dump_json()) == response


@pytest.mark.parametrize("size", ["1e20", "1000000000001", "1e400"])
def test_an_order_size_above_the_races_largest_is_invalid_on_the_wire(size: str) -> None:
    from shared.contracts.ml_decisions import OrderOut
    from shared.domain.rules import MAX_ORDER_SIZE

    assert OrderOut(symbol="BTC", side="BUY", quantity=MAX_ORDER_SIZE).quantity == MAX_ORDER_SIZE
    with pytest.raises(ValidationError, match=r"less than or equal|finite number"):
        OrderOut.model_validate_json(f'{{"symbol": "BTC", "side": "BUY", "quantity": {size}}}')
