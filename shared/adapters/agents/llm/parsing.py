"""From a model's text to orders: tolerant of form, strict on meaning (DESIGN.md section 5).

Tolerated, because real models do it: code fences, prose around the JSON, trailing commas, a single order
object instead of a list (or a bare list of orders, or a `{"decision": {...}}` wrapper), numbers as strings
("0.05", "$2,500"), lower-case sides, and the aliases `qty`/`units` for quantity and `notional`/`usd` for
notional_usd. Rejected, each order on its own with a recorded reason: an unknown symbol, a side other than
BUY/SELL, a missing size or both sizes, a size that is negative, zero, NaN, infinite or absurd, and any field
that carries instructions or chat-role tags (prompt injection) instead of data. The other orders still count.

Each rejected order becomes a `Rejection` of the decision (recorded and counted with the rules' rejections:
`unknown_symbol`, `invalid_size`, `invalid_order`, `too_many_orders`), and is listed in the reasoning too.
A response with no decision object at all raises `InvalidOutputError`; `decision_from_text` turns that (and
anything unexpected) into a HOLD whose reason is `invalid output: <short message>` (`holds.hold_reason_text`),
so parsing never raises into a cycle.
Reasoning longer than `MAX_REASONING_CHARS` is truncated (not rejected: the orders may be fine) and says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.adapters.agents.llm.holds import HOLD_INVALID_OUTPUT, hold_reason_text
from shared.domain.model import AgentDecision, Order, Rejection, RejectionReason, Side

MAX_RESPONSE_CHARS = 64_000  # a 400-token answer is ~2 kB; anything this big is not an answer
MAX_REASONING_CHARS = 1_000
MAX_ORDERS_PARSED = 50  # the rules reject orders beyond max_orders_per_decision; this bounds the work first
ABSURD_QUANTITY = Decimal("1e12")  # more units than any asset's supply
ABSURD_NOTIONAL_USD = Decimal("1e12")  # more USD than exists in the race by orders of magnitude
MAX_DECODE_ATTEMPTS = 32

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_TICKER = re.compile(r"^[A-Z0-9]{1,15}$")
# Instructions or chat-template tokens where data belongs: the model (or text it was fed) is trying to steer.
_INJECTION = re.compile(
    r"ignore\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|earlier)|disregard|system\s*prompt|you\s+are\s+now"
    r"|new\s+instructions|<\|[^|>]*\|>|\[/?INST\]|<</?SYS>>|</?s>|\b(system|assistant|user)\s*:",
    re.IGNORECASE,
)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InvalidOutputError(ValueError):
    """The text holds no decision object: nothing in it can be executed."""


@dataclass(frozen=True, slots=True)
class ParsedDecision:
    """The executable orders, what was rejected and why, and what was tolerated (for the audit trail)."""

    orders: tuple[Order, ...]
    reasoning: str
    confidence: float | None
    rejected: tuple[str, ...] = ()  # "order N: why", as listed in the reasoning
    notes: tuple[str, ...] = ()
    rejections: tuple[Rejection, ...] = ()  # the same, as the decision's recorded rejections


class _OrderIn(BaseModel):
    """One order as a model writes it. Validation errors become the order's rejection reason."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    symbol: str
    side: Side
    quantity: Decimal | None = Field(None, validation_alias=AliasChoices("quantity", "qty", "units"))
    notional_usd: Decimal | None = Field(
        None, validation_alias=AliasChoices("notional_usd", "notional", "usd", "notional_usd_amount")
    )

    @field_validator("symbol", mode="before")
    @classmethod
    def _ticker(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("symbol must be text")
        _refuse_injection("symbol", value)
        ticker = value.strip().upper()
        if not _TICKER.match(ticker):
            raise ValueError(f"symbol {_clip(value, 20)!r} is not a ticker")
        return ticker

    @field_validator("side", mode="before")
    @classmethod
    def _side(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("side must be BUY or SELL")
        _refuse_injection("side", value)
        side = value.strip().upper()
        if side not in ("BUY", "SELL"):
            raise ValueError(f"side {_clip(value, 20)!r} is not BUY or SELL")
        return side

    @field_validator("quantity", "notional_usd", mode="before")
    @classmethod
    def _number(cls, value: object) -> Decimal | None:
        return None if value is None else _to_decimal(value)


def parse_decision(text: str, *, symbols: Collection[str]) -> ParsedDecision:
    """The decision in `text`; `InvalidOutputError` when there is none. `symbols` are the tradable ones."""
    if len(text) > MAX_RESPONSE_CHARS:
        raise InvalidOutputError(f"response of {len(text)} characters is too long")
    document, notes = _find_decision_object(text)
    raw_orders = document.get("orders", document.get("order"))
    if raw_orders is None and "orders" not in document and "order" not in document:
        raise InvalidOutputError("no 'orders' field")
    if isinstance(raw_orders, Mapping):
        raw_orders, notes = [raw_orders], [*notes, "single order object instead of a list"]
    elif raw_orders is None:
        raw_orders = []
    elif not isinstance(raw_orders, list):
        raise InvalidOutputError(f"'orders' must be a list, got {type(raw_orders).__name__}")

    orders: list[Order] = []
    rejections: list[Rejection] = []
    for index, raw in enumerate(raw_orders[:MAX_ORDERS_PARSED], start=1):
        outcome = _order(raw, symbols)
        if isinstance(outcome, Order):
            orders.append(outcome)
        else:
            rejections.append(Rejection(outcome.order, outcome.reason, f"order {index}: {outcome.detail}"))
    if len(raw_orders) > MAX_ORDERS_PARSED:
        detail = f"orders {MAX_ORDERS_PARSED + 1}-{len(raw_orders)}: more than {MAX_ORDERS_PARSED} orders"
        rejections.append(Rejection(None, RejectionReason.TOO_MANY_ORDERS, detail))
    rejected = [r.detail for r in rejections]

    reasoning, reasoning_notes = _reasoning(document.get("reasoning"))
    confidence, confidence_notes = _confidence(document.get("confidence"))
    return ParsedDecision(
        tuple(orders),
        reasoning,
        confidence,
        tuple(rejected),
        (*notes, *reasoning_notes, *confidence_notes),
        tuple(rejections),
    )


def decision_from_text(text: str, *, symbols: Collection[str], **audit: Any) -> AgentDecision:
    """The `AgentDecision` for a model's text, with `audit` fields attached. Never raises: a text without a
    decision, or any surprise while reading it, becomes a HOLD whose reason starts with "invalid output"."""
    try:
        parsed = parse_decision(text, symbols=symbols)
    except InvalidOutputError as exc:
        return _invalid_output(str(exc), audit)
    except Exception as exc:  # a parser bug must cost one HOLD, not the cycle
        return _invalid_output(type(exc).__name__, audit)
    return to_agent_decision(parsed, **audit)


def _invalid_output(message: str, audit: Mapping[str, Any]) -> AgentDecision:
    reason = hold_reason_text(HOLD_INVALID_OUTPUT, message)
    return AgentDecision(orders=(), reasoning=f"HOLD: {HOLD_INVALID_OUTPUT}: {message}", hold_reason=reason, **audit)


def to_agent_decision(parsed: ParsedDecision, **audit: Any) -> AgentDecision:
    """Parser rejections become the decision's `rejections` (recorded and counted like the rules' ones) and
    are listed in the reasoning with the parser's notes: an auditor sees what the model asked for and why part
    of it was not executed."""
    reasoning = parsed.reasoning
    if parsed.rejected:
        reasoning += "\n[rejected by parser] " + "; ".join(parsed.rejected)
    if parsed.notes:
        reasoning += "\n[parser notes] " + "; ".join(parsed.notes)
    hold_reason = None
    if parsed.rejected and not parsed.orders:
        count = len(parsed.rejected)
        summary = f"every order rejected ({count} order{'s' if count > 1 else ''}; {parsed.rejected[0]})"
        hold_reason = hold_reason_text(HOLD_INVALID_OUTPUT, summary)
    return AgentDecision(
        orders=parsed.orders,
        reasoning=reasoning.strip(),
        confidence=parsed.confidence,
        hold_reason=hold_reason,
        rejections=parsed.rejections,
        **audit,
    )


# ---------------------------------------------------------------- finding the JSON in the text


def _find_decision_object(text: str) -> tuple[dict[str, Any], list[str]]:
    stripped = text.strip()
    if not stripped:
        raise InvalidOutputError("empty response")
    candidates: list[tuple[str, str | None]] = [(stripped, None)]
    candidates += [(block.strip(), "code fence") for block in _FENCE.findall(stripped)]
    for candidate, note in candidates:
        value = _loads(candidate)
        if value is not None and (found := _as_decision(value)) is not None:
            return found[0], [n for n in (note, found[1]) if n]
    # Prose around the JSON: try each '{' (and '[') in turn, keeping the first that decodes to a decision.
    decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)
    starts = [m.start() for m in re.finditer(r"[{\[]", stripped)][:MAX_DECODE_ATTEMPTS]
    for start in starts:
        for candidate in (stripped[start:], _TRAILING_COMMA.sub(r"\1", stripped[start:])):
            try:
                value, _ = decoder.raw_decode(candidate)
            except (ValueError, RecursionError):
                continue
            # Inside prose only a whole decision counts: an order object found there may be a fragment of a
            # truncated answer, and executing part of a decision is worse than holding.
            if (found := _as_decision(value, fragments_allowed=False)) is not None:
                return found[0], ["text around the JSON", *([found[1]] if found[1] else [])]
    raise InvalidOutputError(f"no JSON decision object in {_clip(stripped, 80)!r}")


def _loads(text: str) -> Any:
    for candidate in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            return json.loads(candidate, parse_float=Decimal, parse_constant=Decimal)
        except (ValueError, RecursionError):
            continue
    return None


def _as_decision(value: Any, *, fragments_allowed: bool = True) -> tuple[dict[str, Any], str | None] | None:
    """The decision dict inside a decoded value, and a note when its shape was tolerated; None if not one."""
    if not fragments_allowed and not (isinstance(value, dict) and ("orders" in value or "order" in value)):
        wrapped = isinstance(value, dict) and any(isinstance(v, dict) and "orders" in v for v in value.values())
        if not wrapped:
            return None
    if isinstance(value, list) and value and all(isinstance(v, dict) and "side" in v for v in value):
        return {"orders": value}, "bare list of orders"
    if not isinstance(value, dict):
        return None
    if "orders" in value or "order" in value:
        return value, None
    if "symbol" in value and "side" in value:
        return {"orders": [value]}, "bare order object"
    nested = [v for v in value.values() if isinstance(v, dict) and ("orders" in v or "order" in v)]
    if len(nested) == 1:
        return nested[0], "decision wrapped in an outer object"
    if "reasoning" in value:
        return value, None  # a decision with its orders missing: reported as such by the caller
    return None


# ---------------------------------------------------------------- field checks


def _order(raw: object, symbols: Collection[str]) -> Order | Rejection:
    """The order, or its rejection: the reason and, when symbol and side could be read, the order as asked."""
    if not isinstance(raw, Mapping):
        return Rejection(None, RejectionReason.INVALID_ORDER, f"not an object ({_clip(repr(raw), 40)})")
    try:
        parsed = _OrderIn.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        detail = "; ".join(_error_text(e) for e in errors)
        sizes_only = all(str(e.get("loc", ("",))[0]) in ("quantity", "notional_usd") for e in errors)
        return Rejection(
            _readable_order(raw), RejectionReason.INVALID_SIZE if sizes_only else RejectionReason.INVALID_ORDER, detail
        )
    label = f"{parsed.symbol} {parsed.side}"
    asked = Order(parsed.symbol, parsed.side, quantity=parsed.quantity, notional_usd=parsed.notional_usd)
    if parsed.symbol not in symbols:
        detail = f"{label}: unknown symbol (tradable: {' '.join(sorted(symbols))})"
        return Rejection(asked, RejectionReason.UNKNOWN_SYMBOL, detail)
    if (parsed.quantity is None) == (parsed.notional_usd is None):
        return Rejection(asked, RejectionReason.INVALID_SIZE, f"{label}: needs exactly one of quantity or notional_usd")
    size_field = "quantity" if parsed.quantity is not None else "notional_usd"
    size = parsed.quantity if parsed.quantity is not None else parsed.notional_usd
    assert size is not None
    if not size.is_finite():
        return Rejection(asked, RejectionReason.INVALID_SIZE, f"{label}: {size_field} is not a finite number")
    if size <= 0:
        return Rejection(asked, RejectionReason.INVALID_SIZE, f"{label}: {size_field} must be positive, got {size}")
    if size > (ABSURD_QUANTITY if size_field == "quantity" else ABSURD_NOTIONAL_USD):
        return Rejection(asked, RejectionReason.INVALID_SIZE, f"{label}: {size_field} {size:.3E} is absurd")
    return asked


def _readable_order(raw: Mapping[Any, Any]) -> Order | None:
    """The order as asked when its symbol and side are readable (its size is what was wrong), else None."""
    symbol, side = raw.get("symbol"), raw.get("side")
    if not (isinstance(symbol, str) and isinstance(side, str)):
        return None
    ticker, side_text = symbol.strip().upper(), side.strip().upper()
    if not _TICKER.match(ticker) or side_text not in ("BUY", "SELL") or _INJECTION.search(symbol + side):
        return None
    return Order(ticker, Side(side_text))


def _error_text(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ())) or "order"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{location}: {'missing' if error.get('type') == 'missing' else message}"


def _refuse_injection(field: str, value: str) -> None:
    if _INJECTION.search(value):
        raise ValueError(f"{field} carries instructions or role tags (possible prompt injection)")


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str):
        _refuse_injection("size", value)
        cleaned = value.strip().upper().removeprefix("$").removesuffix("USD").replace(",", "").replace("_", "")
        try:
            return Decimal(cleaned.strip())
        except InvalidOperation:
            raise ValueError(f"{_clip(value, 20)!r} is not a number") from None
    raise ValueError(f"expected a number, got {type(value).__name__}")


def _reasoning(value: object) -> tuple[str, list[str]]:
    notes: list[str] = []
    if value is None:
        return "", ["no reasoning given"]
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = _CONTROL_CHARS.sub("", text).strip()
    if _INJECTION.search(text):
        # Reasoning is shown on the dashboard and never fed back to a model; neutralise tags, keep the words.
        text = re.sub(r"<\|[^|>]*\|>|\[/?INST\]|<</?SYS>>|</?s>", "[tag removed]", text)
        notes.append("reasoning contains instruction-like text")
    if len(text) > MAX_REASONING_CHARS:
        notes.append(f"reasoning truncated from {len(text)} to {MAX_REASONING_CHARS} characters")
        text = text[:MAX_REASONING_CHARS] + "…"
    return text, notes


def _confidence(value: object) -> tuple[float | None, list[str]]:
    if value is None:
        return None, []
    try:
        number = float(_to_decimal(value.rstrip("%") if isinstance(value, str) else value))
    except ValueError:
        return None, [f"confidence {_clip(repr(value), 20)} ignored: not a number"]
    if not 0 <= number <= 1:  # NaN fails this too
        return None, [f"confidence {number:g} ignored: outside 0..1"]
    return number, []


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
