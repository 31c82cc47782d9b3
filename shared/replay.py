"""`python -m shared.replay DECISION_ID [--agent-id N | --provider P --model M] [--json]` (`make replay ID=...`).

Reruns a stored decision of the race's database (`ConnectionStrings__TradingDb`) on its own model or another,
and prints the original and the counterfactual side by side; writes nothing (shared.services.replay). The
models are reached as the race reaches them, from the same settings: a Custom ML decision needs
`CustomMlAgent__BaseUrl` (ml_service running), an LLM one its provider's key or endpoint.

Exit status: 0 replayed (identical or not), 1 refused or not found, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.services.replay import DecisionOutcome, ReplayResult

COLUMN = 52


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.replay", description=__doc__.split("\n\n")[1])
    parser.add_argument("decision_id", type=int, help="the decision's id (GET /api/agents/{id}/decisions)")
    parser.add_argument("--agent-id", type=int, help="replay on this agent's model (in the original's seat)")
    parser.add_argument("--provider", help="replay on this provider's model (with --model)")
    parser.add_argument("--model", help="the provider's model (with --provider)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.decision_id < 1 or (args.agent_id is not None and args.agent_id < 1):
        parser.error("ids are positive integers")
    if args.agent_id is not None and (args.provider or args.model):
        parser.error("give either --agent-id or --provider and --model, not both")
    if bool(args.provider) != bool(args.model):
        parser.error("--provider and --model go together")

    from shared.bootstrap import bootstrap
    from shared.services.replay import ReplayError

    container = bootstrap()
    try:
        result = asyncio.run(
            container.replay_decision(
                args.decision_id, agent_id=args.agent_id, provider=args.provider, model=args.model
            )
        )
    except ReplayError as exc:
        print(f"replay refused ({exc.code}): {exc}", file=sys.stderr)
        return 1
    print(json.dumps(as_json(result), indent=2) if args.json else side_by_side(result))
    return 0


def as_json(result: ReplayResult) -> dict[str, Any]:
    def outcome(o: DecisionOutcome) -> dict[str, Any]:
        return {
            "orders": o.orders,
            "reasoning": o.reasoning,
            "confidence": o.confidence,
            "hold_reason": o.hold_reason,
            "rejections": o.rejections,
            "fills": o.fills,
        }

    return {
        "decision_id": result.decision_id,
        "agent_id": result.agent_id,
        "cycle_time": result.cycle_time.isoformat(),
        "snapshot_sha256": result.snapshot_sha256,
        "replay_agent": result.replay_agent_name,
        "identical": result.identical,
        "same_model": result.same_model,
        "prompt_identical": result.prompt_identical,
        "original": outcome(result.original),
        "counterfactual": outcome(result.counterfactual),
        "original_model": dict(result.original_model),
        "replay_model": dict(result.replay_model),
        "latency_ms": result.latency_ms,
        "notes": list(result.notes),
    }


def side_by_side(result: ReplayResult) -> str:
    """Two columns, original | replay, one row per aspect of the decision."""
    head = [
        f"Decision {result.decision_id} of agent {result.agent_id} at {result.cycle_time:%Y-%m-%d %H:%M} UTC",
        f"snapshot {result.snapshot_sha256} (rebuilt from the stored candles: matches)",
        f"replayed on: {result.replay_agent_name}"
        + ("" if result.same_model else " (other model settings than the original's)"),
        "",
    ]
    rows = [
        ("orders", _orders(result.original.orders), _orders(result.counterfactual.orders)),
        ("reasoning", result.original.reasoning, result.counterfactual.reasoning),
        ("confidence", str(result.original.confidence), str(result.counterfactual.confidence)),
        ("hold reason", result.original.hold_reason or "-", result.counterfactual.hold_reason or "-"),
        ("rejections", _rejections(result.original.rejections), _rejections(result.counterfactual.rejections)),
        ("fills", _fills(result.original.fills), _fills(result.counterfactual.fills)),
    ]
    lines = [*head, f"{'':12} {'original':<{COLUMN}} | replay", "-" * (13 + 2 * COLUMN + 3)]
    for label, left, right in rows:
        lines.extend(_row(label, left, right))
    verdict = "IDENTICAL decision" if result.identical else "DIFFERENT decision"
    prompt = {None: "", True: "; same prompt", False: "; the rebuilt prompt differs from the stored one"}
    lines += ["", f"{verdict}{prompt[result.prompt_identical]}", *result.notes]
    return "\n".join(lines)


def _row(label: str, left: str, right: str) -> list[str]:
    import textwrap

    a = textwrap.wrap(left, COLUMN) or [""]
    b = textwrap.wrap(right, COLUMN) or [""]
    height = max(len(a), len(b))
    a += [""] * (height - len(a))
    b += [""] * (height - len(b))
    return [f"{label if i == 0 else '':12} {x:<{COLUMN}} | {y}" for i, (x, y) in enumerate(zip(a, b, strict=True))]


def _orders(orders: list[dict[str, Any]]) -> str:
    if not orders:
        return "HOLD (no orders)"
    return "; ".join(
        f"{o['side']} {o['symbol']} "
        + (f"qty {o['quantity']}" if o.get("quantity") is not None else f"${o.get('notional_usd')}")
        for o in orders
    )


def _rejections(rejections: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r.get('symbol') or '?'}: {r['reason']} ({r['detail']})" for r in rejections) or "none"


def _fills(fills: list[dict[str, Any]]) -> str:
    return (
        "; ".join(f"{f['side']} {f['quantity']} {f['symbol']} @ {f['price']} fee {f['fee']}" for f in fills) or "none"
    )


if __name__ == "__main__":
    sys.exit(main())
