"""Request and response models of `POST /api/admin/decisions/{decision_id}/replay`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.api.redaction import classify_hold, public_reasoning
from shared.domain.model import AgentProvider
from shared.services.replay import DecisionOutcome, ReplayResult

MAX_MODEL_CHARS = 200  # the agents table's model column


class ReplayRequest(BaseModel):
    """Optional body: nothing reruns the decision on its own model (as it was when it decided); `agent_id`
    on another agent's model, strategy and params; `provider` with `model` on that model."""

    model_config = ConfigDict(extra="forbid")

    agent_id: int | None = Field(None, ge=1, le=2**31 - 1, description="Replay on this agent's model.")
    provider: AgentProvider | None = Field(None, description="Replay on this provider (with `model`).")
    model: str | None = Field(
        None, min_length=1, max_length=MAX_MODEL_CHARS, description="The provider's model (with `provider`)."
    )


class ReplayOutcomePublic(BaseModel):
    orders: list[dict[str, Any]] = Field(description="The orders asked for, amounts as exact decimal strings.")
    reasoning: str
    confidence: float | None
    hold_code: str | None = Field(description="Stable code of a fallback HOLD's reason (`timeout`, ...), else null.")
    hold_reason: str | None = Field(description="A fallback HOLD's reason in our words (the raw text is not public).")
    rejections: list[dict[str, Any]] = Field(description="Orders refused by the parser or the rules, with why.")
    fills: list[dict[str, Any]] = Field(
        description="What executing the orders filled: stored trades for the original, would-be fills on a copy of "
        "the portfolio for the replay (nothing is written)."
    )

    @classmethod
    def of(cls, outcome: DecisionOutcome) -> ReplayOutcomePublic:
        hold = classify_hold(outcome.hold_reason) if outcome.hold_reason else None
        return cls(
            orders=outcome.orders,
            reasoning=public_reasoning(outcome.reasoning, hold),
            confidence=outcome.confidence,
            hold_code=hold.code if hold else None,
            hold_reason=hold.message if hold else None,
            rejections=outcome.rejections,
            fills=outcome.fills,
        )


class ReplayPublic(BaseModel):
    decision_id: int
    agent_id: int
    cycle_time: datetime
    snapshot_sha256: str = Field(description="The snapshot rebuilt from the stored candles: equal to the stored one.")
    replay_agent: str = Field(description="Whose model answered the replay (in the original agent's seat).")
    identical: bool = Field(description="Same orders, reasoning, confidence and hold reason as the original.")
    same_model: bool = Field(description="The replay ran with the model settings stored with the original.")
    prompt_identical: bool | None = Field(
        description="Whether the rebuilt prompt equals the stored one (null for agents without a prompt)."
    )
    original: ReplayOutcomePublic
    counterfactual: ReplayOutcomePublic
    original_model: dict[str, Any] = Field(description="Model settings stored with the decision (never a key).")
    replay_model: dict[str, Any] = Field(description="Model settings the replay ran with.")
    latency_ms: float | None
    notes: list[str]

    @classmethod
    def of(cls, result: ReplayResult) -> ReplayPublic:
        return cls(
            decision_id=result.decision_id,
            agent_id=result.agent_id,
            cycle_time=result.cycle_time,
            snapshot_sha256=result.snapshot_sha256,
            replay_agent=result.replay_agent_name,
            identical=result.identical,
            same_model=result.same_model,
            prompt_identical=result.prompt_identical,
            original=ReplayOutcomePublic.of(result.original),
            counterfactual=ReplayOutcomePublic.of(result.counterfactual),
            original_model=dict(result.original_model),
            replay_model=dict(result.replay_model),
            latency_ms=result.latency_ms,
            notes=list(result.notes),
        )
