"""Settings of the outside services the race calls: the LLM providers, CoinGecko and ml_service. Keys are
`SecretStr`s, never printed; each section validates its own URLs and keys."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.config_validation import ConfigSection as _Section
from shared.config_validation import real_secret_or_none, url_or_none


class LlmSettings(_Section):
    """One OpenAI-compatible chat-completions provider. Keys never appear in logs, errors or responses."""

    base_url: str | None = Field(None, alias="BaseUrl")
    model: str = Field("", alias="Model")
    api_key: SecretStr | None = Field(None, alias="ApiKey")
    timeout_seconds: float = Field(20.0, alias="TimeoutSeconds", gt=0, le=300)
    max_retries: int = Field(3, alias="MaxRetries", ge=0, le=10)
    temperature: float = Field(0.3, alias="Temperature", ge=0, le=2)
    max_tokens: int = Field(400, alias="MaxTokens", ge=16, le=8192)
    requests_per_minute: int = Field(30, alias="RequestsPerMinute", ge=1, le=100_000)
    tokens_per_minute: int = Field(6000, alias="TokensPerMinute", ge=100, le=100_000_000)
    breaker_failures: int = Field(5, alias="BreakerFailures", ge=1, le=100)
    breaker_reset_seconds: float = Field(60.0, alias="BreakerResetSeconds", gt=0, le=3600)
    # USD per million tokens, for the cost estimate recorded with every decision (0 = free tier / local).
    prompt_price_per_mtok: Decimal = Field(Decimal(0), alias="PromptPricePerMTok", ge=0)
    completion_price_per_mtok: Decimal = Field(Decimal(0), alias="CompletionPricePerMTok", ge=0)

    @field_validator("api_key")
    @classmethod
    def _no_placeholder_key(cls, value: SecretStr | None) -> SecretStr | None:
        return real_secret_or_none(value, "the API key")


LLAMA_BASE_URLS = {
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
}


class LlamaSettings(LlmSettings):
    """Llama through any OpenAI-compatible endpoint: Groq (default), Together.ai, or a local Ollama/llama.cpp
    server (`Llama__Provider=openai_compatible` with `Llama__BaseUrl`)."""

    provider: Literal["groq", "together", "openai_compatible"] = Field("groq", alias="Provider")
    model: str = Field("llama-3.3-70b-versatile", alias="Model")
    # Groq's free tier for llama-3.3-70b-versatile: 30 requests and 12k tokens a minute, 100k tokens a day.
    tokens_per_minute: int = Field(12_000, alias="TokensPerMinute", ge=100, le=100_000_000)

    @property
    def resolved_base_url(self) -> str | None:
        return self.base_url or LLAMA_BASE_URLS.get(self.provider)


class OpenAISettings(LlmSettings):
    base_url: str | None = Field("https://api.openai.com/v1", alias="BaseUrl")
    model: str = Field("gpt-4o-mini", alias="Model")


class AzureOpenAISettings(LlmSettings):
    """Azure OpenAI: `Endpoint` (https://NAME.openai.azure.com), a deployment name, and an API version."""

    endpoint: str | None = Field(None, alias="Endpoint")
    deployment: str | None = Field(None, alias="Deployment")
    api_version: str = Field("2024-10-21", alias="ApiVersion")


COINGECKO_PUBLIC_URL = "https://api.coingecko.com/api/v3"  # keyless and Demo
COINGECKO_PRO_URL = "https://pro-api.coingecko.com/api/v3"


class CoinGeckoSettings(_Section):
    """The live market data provider. `Plan=auto` infers it: no key -> keyless; a key -> Demo, or Pro when
    `BaseUrl` is the pro-api host. A Demo key must go to api.coingecko.com and a Pro key to pro-api (CoinGecko
    answers 400 10010/10011 otherwise)."""

    api_key: SecretStr | None = Field(None, alias="ApiKey")
    plan: Literal["auto", "keyless", "demo", "pro"] = Field("auto", alias="Plan")
    base_url: str | None = Field(None, alias="BaseUrl")
    # The Demo plan allows 30 calls a minute (and 10,000 a month); keyless is IP-shared and lower: set 10.
    calls_per_minute: int = Field(30, alias="CallsPerMinute", ge=1, le=10_000)
    timeout_seconds: float = Field(10.0, alias="TimeoutSeconds", gt=0, le=120)
    max_retries: int = Field(3, alias="MaxRetries", ge=0, le=10)
    breaker_failures: int = Field(3, alias="BreakerFailures", ge=1, le=100)
    breaker_reset_seconds: float = Field(300.0, alias="BreakerResetSeconds", gt=0, le=3600)
    # "SYMBOL=coingecko-id,..." overrides the ids seeded with the assets (e.g. after CoinGecko renames one).
    ids: str = Field("", alias="Ids")

    @field_validator("api_key")
    @classmethod
    def _no_placeholder_key(cls, value: SecretStr | None) -> SecretStr | None:
        return real_secret_or_none(value, "CoinGecko__ApiKey")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return url_or_none(value, "CoinGecko__BaseUrl", example=COINGECKO_PUBLIC_URL)

    @field_validator("ids")
    @classmethod
    def _id_pairs(cls, value: str) -> str:
        _parse_id_overrides(value)
        return value

    @model_validator(mode="after")
    def _plan_has_key(self) -> CoinGeckoSettings:
        if self.plan in ("demo", "pro") and self.api_key is None:
            raise ValueError(f"CoinGecko__Plan={self.plan} needs CoinGecko__ApiKey (or set CoinGecko__Plan=keyless)")
        return self

    @property
    def resolved_plan(self) -> Literal["keyless", "demo", "pro"]:
        if self.plan != "auto":
            return self.plan
        if self.api_key is None:
            return "keyless"
        return "pro" if self.base_url is not None and "pro-api." in self.base_url else "demo"

    @property
    def resolved_base_url(self) -> str:
        if self.base_url is not None:
            return self.base_url
        return COINGECKO_PRO_URL if self.resolved_plan == "pro" else COINGECKO_PUBLIC_URL

    @property
    def id_overrides(self) -> Mapping[str, str]:
        return _parse_id_overrides(self.ids)


def _parse_id_overrides(text: str) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        symbol, sep, coin_id = (part.strip() for part in pair.partition("="))
        if not sep or not symbol or not coin_id:
            raise ValueError(f"CoinGecko__Ids: expected SYMBOL=coingecko-id pairs, got {pair!r}")
        overrides[symbol.upper()] = coin_id
    return overrides


class CustomMlAgentSettings(_Section):
    """The `custom_ml` agent's client of ml_service. Without `BaseUrl` the ML agent is listed but inactive."""

    base_url: str | None = Field(None, alias="BaseUrl")
    api_key: SecretStr | None = Field(None, alias="ApiKey")
    timeout_seconds: float = Field(5.0, alias="TimeoutSeconds", gt=0, le=120)
    max_retries: int = Field(2, alias="MaxRetries", ge=0, le=10)
    breaker_failures: int = Field(5, alias="BreakerFailures", ge=1, le=100)
    breaker_reset_seconds: float = Field(30.0, alias="BreakerResetSeconds", gt=0, le=3600)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return url_or_none(value, "CustomMlAgent__BaseUrl", example="http://127.0.0.1:8081")

    @field_validator("api_key")
    @classmethod
    def _no_placeholder_key(cls, value: SecretStr | None) -> SecretStr | None:
        return real_secret_or_none(value, "CustomMlAgent__ApiKey")
