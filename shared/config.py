"""One `Settings` object, read from the environment (Azure app settings) or `local.settings.json`.

Environment variable names are the Azure app setting names, in `Section__Key` form (DESIGN.md section 7), e.g.
`ConnectionStrings__TradingDb`, `Race__StartingCash`, `Schedules__RunAgents`. Names are case-insensitive.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.config_validation import PLACEHOLDER_MARKERS, real_secret_or_none, url_or_none
from shared.config_validation import ConfigSection as _Section
from shared.domain.model import INTERVAL_SECONDS
from shared.domain.rules import RaceRules
from shared.provider_settings import (
    COINGECKO_PRO_URL,
    COINGECKO_PUBLIC_URL,
    LLAMA_BASE_URLS,
    AzureOpenAISettings,
    CoinGeckoSettings,
    CustomMlAgentSettings,
    LlamaSettings,
    LlmSettings,
    OpenAISettings,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'data' / 'trading_race.db'}"
LOCAL_SETTINGS_FILE = PROJECT_ROOT / "local.settings.json"

__all__ = [  # the sections and validators in provider_settings / config_validation are re-exported from here
    "COINGECKO_PRO_URL",
    "COINGECKO_PUBLIC_URL",
    "DEFAULT_DATABASE_URL",
    "LLAMA_BASE_URLS",
    "LOCAL_SETTINGS_FILE",
    "PLACEHOLDER_MARKERS",
    "PROJECT_ROOT",
    "ApiSettings",
    "AzureOpenAISettings",
    "CoinGeckoSettings",
    "ConnectionStrings",
    "CustomMlAgentSettings",
    "DatabaseSettings",
    "KeyVaultSettings",
    "LlamaSettings",
    "LlmSettings",
    "LocalRunSettings",
    "LocalSettingsJsonSource",
    "MarketDataSettings",
    "OpenAISettings",
    "RaceSettings",
    "ScheduleSettings",
    "Settings",
    "real_secret_or_none",
    "url_or_none",
]


class ConnectionStrings(_Section):
    trading_db: str = Field(DEFAULT_DATABASE_URL, alias="TradingDb")


class DatabaseSettings(_Section):
    """Bounds on how long a database call may hold a worker (a hung or unreachable server)."""

    connect_timeout_seconds: int = Field(10, alias="ConnectTimeoutSeconds", ge=1, le=300)
    statement_timeout_seconds: int = Field(30, alias="StatementTimeoutSeconds", ge=1, le=3600)


class RaceSettings(_Section):
    starting_cash: Decimal = Field(Decimal(100_000), alias="StartingCash", gt=0)
    fee_bps: Decimal = Field(Decimal(10), alias="FeeBps", ge=0, lt=10_000)
    slippage_bps: Decimal = Field(Decimal(5), alias="SlippageBps", ge=0, lt=10_000)
    min_notional_usd: Decimal = Field(Decimal(10), alias="MinNotionalUsd", ge=0)
    max_position_fraction: Decimal = Field(Decimal(1), alias="MaxPositionFraction", gt=0, le=1)
    max_orders_per_decision: int = Field(10, alias="MaxOrdersPerDecision", ge=1, le=100)
    cycle_minutes: int = Field(60, alias="CycleMinutes", ge=1, le=1440)
    snapshot_candles: int = Field(48, alias="SnapshotCandles", ge=2, le=1000)
    agent_timeout_seconds: float = Field(30.0, alias="AgentTimeoutSeconds", gt=0, le=600)
    max_concurrent_agents: int = Field(32, alias="MaxConcurrentAgents", ge=1, le=256)
    random_seed: int = Field(42, alias="RandomSeed")
    # Opt-in: refuse trades at a close older than this (0 = no limit; see README, "Bring your own market data").
    max_price_age_minutes: int = Field(0, alias="MaxPriceAgeMinutes", ge=0, le=60 * 24 * 365)

    def rules(self) -> RaceRules:
        return RaceRules(
            starting_cash=self.starting_cash,
            fee_bps=self.fee_bps,
            slippage_bps=self.slippage_bps,
            min_notional_usd=self.min_notional_usd,
            max_position_fraction=self.max_position_fraction,
            max_orders_per_decision=self.max_orders_per_decision,
            max_price_age=timedelta(minutes=self.max_price_age_minutes) if self.max_price_age_minutes else None,
        )


def _default_market_data_provider() -> Literal["replay", "coingecko"]:
    # Azure sets WEBSITE_INSTANCE_ID on every Functions instance: live prices there, bundled replay elsewhere.
    return "coingecko" if os.environ.get("WEBSITE_INSTANCE_ID") else "replay"


class MarketDataSettings(_Section):
    provider: Literal["replay", "coingecko"] = Field(default_factory=_default_market_data_provider, alias="Provider")
    interval: str = Field("1h", alias="Interval")
    # Replay: where the simulated clock starts on a fresh database (after a warm-up of candles).
    replay_start: datetime = Field(datetime(2024, 1, 2, tzinfo=UTC), alias="ReplayStart")
    backfill_hours: int = Field(72, alias="BackfillHours", ge=1, le=24 * 90)
    # Replay: your own candle files instead of the bundled 2024 set (shared.adapters.market_data.replay_dir),
    # and which of their assets race (comma-separated; empty = every file in the directory).
    replay_dir: Path | None = Field(None, alias="ReplayDir")
    replay_assets: str = Field("", alias="ReplayAssets")

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        if value not in INTERVAL_SECONDS:
            raise ValueError(f"unknown interval {value!r}; use one of {sorted(INTERVAL_SECONDS)}")
        return value

    @field_validator("replay_dir", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("replay_start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ScheduleSettings(_Section):
    """NCRONTAB expressions (six fields, seconds first) read by the timer triggers as `%Schedules__X%`. Ordered
    within the hour: the candle closing at the hour is ingested at :00, the cycle named by the hour runs at :05
    on it, and its marks follow at :10 (again at :25, :40, :55: no-ops unless an earlier firing failed)."""

    market_data: str = Field("0 */15 * * * *", alias="MarketData")
    run_agents: str = Field("0 5 * * * *", alias="RunAgents")
    equity_snapshot: str = Field("0 10,25,40,55 * * * *", alias="EquitySnapshot")


class ApiSettings(_Section):
    cors_origins: str = Field("http://localhost:5173", alias="CorsOrigins")  # comma-separated
    admin_key: SecretStr | None = Field(None, alias="AdminKey")
    max_page_size: int = Field(100, alias="MaxPageSize", ge=1, le=1000)
    max_equity_points: int = Field(500, alias="MaxEquityPoints", ge=10, le=5000)
    max_candles: int = Field(1000, alias="MaxCandles", ge=10, le=10_000)
    # Rendered GET answers reused until the data changes (shared/api/response_cache.py); 0 turns it off.
    response_cache_megabytes: int = Field(32, alias="ResponseCacheMegabytes", ge=0, le=4096)
    # How often the data version is read: an answer can lag a write by this long (0: read it every request).
    response_cache_max_age_seconds: float = Field(1.0, alias="ResponseCacheMaxAgeSeconds", ge=0, le=60)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @field_validator("admin_key")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        return real_secret_or_none(value, "Api__AdminKey")


class LocalRunSettings(_Section):
    """The local race's in-process scheduler (not used in Azure)."""

    seconds_per_simulated_hour: float = Field(2.0, alias="SecondsPerSimulatedHour", ge=0, le=3600)
    host: str = Field("127.0.0.1", alias="Host")
    port: int = Field(7071, alias="Port", ge=1, le=65535)
    # Opt-in: a real LLM offline (SmolLM2-135M on a local llama.cpp server) races as one more agent.
    local_llm: bool = Field(False, alias="LocalLlm")
    local_llm_port: int = Field(8088, alias="LocalLlmPort", ge=1, le=65535)


class KeyVaultSettings(_Section):
    """Optional run-time secret source: with `Uri` set, secret settings that are missing are read from this vault
    (managed identity in Azure, `DefaultAzureCredential` locally). Key Vault references in app settings need
    none of this: the platform resolves them."""

    uri: str | None = Field(None, alias="Uri")
    cache_ttl_seconds: float = Field(300.0, alias="CacheTtlSeconds", ge=0, le=86_400)

    @field_validator("uri")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if url_or_none(value, "KeyVault__Uri", example="https://NAME.vault.azure.net/", schemes=("https://",)) is None:
            return None
        return value.strip() if value else None  # as given: the SDK takes the vault URL with or without its slash


KEY_VAULT_REFERENCE_PREFIX = "@microsoft.keyvault("


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    connection_strings: ConnectionStrings = Field(default_factory=ConnectionStrings, alias="ConnectionStrings")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, alias="Database")
    race: RaceSettings = Field(default_factory=RaceSettings, alias="Race")
    market_data: MarketDataSettings = Field(default_factory=MarketDataSettings, alias="MarketData")
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings, alias="Schedules")
    api: ApiSettings = Field(default_factory=ApiSettings, alias="Api")
    local: LocalRunSettings = Field(default_factory=LocalRunSettings, alias="Local")
    llama: LlamaSettings = Field(default_factory=LlamaSettings, alias="Llama")
    openai: OpenAISettings = Field(default_factory=OpenAISettings, alias="OpenAI")
    azure_openai: AzureOpenAISettings = Field(default_factory=AzureOpenAISettings, alias="AzureOpenAI")
    custom_ml: CustomMlAgentSettings = Field(default_factory=CustomMlAgentSettings, alias="CustomMlAgent")
    coingecko: CoinGeckoSettings = Field(default_factory=CoinGeckoSettings, alias="CoinGecko")
    key_vault: KeyVaultSettings = Field(default_factory=KeyVaultSettings, alias="KeyVault")
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL", "Logging__Level"))
    # Application Insights (through azure-monitor-opentelemetry): telemetry is exported only when it is set.
    applicationinsights_connection_string: SecretStr | None = Field(
        None, validation_alias=AliasChoices("APPLICATIONINSIGHTS_CONNECTION_STRING")
    )

    @model_validator(mode="before")
    @classmethod
    def _no_unresolved_key_vault_references(cls, data: Any) -> Any:
        # The platform resolves `@Microsoft.KeyVault(...)` app settings before the app starts; when it cannot,
        # the reference text arrives as the value. Stop here, naming the settings, rather than send it as a key.
        if isinstance(data, Mapping):
            unresolved = sorted(_unresolved_references(data, cls.model_fields))
            if unresolved:
                raise ValueError(
                    f"{', '.join(unresolved)}: the Key Vault reference was not resolved (grant the app's identity "
                    "'Key Vault Secrets User' on the vault and check the secret URI)"
                )
        return data

    def with_secrets(self, secrets: Mapping[str, str]) -> Settings:
        """A copy with secret settings (`Section__Key` names, see `shared.adapters.secrets.SECRET_SETTINGS`)
        filled in, validated like any other value (a placeholder in the vault fails the same way)."""
        sections: dict[str, dict[str, Any]] = {}
        for name, value in secrets.items():
            section_alias, _, key_alias = name.partition("__")
            section_field = _field_by_alias(type(self).model_fields, section_alias)
            if section_field is None:
                continue
            section = getattr(self, section_field)
            key_field = _field_by_alias(type(section).model_fields, key_alias)
            if key_field is not None:
                sections.setdefault(section_field, section.model_dump())[key_field] = value
        updates = {name: type(getattr(self, name)).model_validate(values) for name, values in sections.items()}
        return self.model_copy(update=updates)

    @property
    def database_url(self) -> str:
        return self.connection_strings.trading_db

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first (Azure app settings, Core Tools), then local.settings.json for plain local runs.
        return init_settings, env_settings, LocalSettingsJsonSource(settings_cls)


def _field_by_alias(fields: Mapping[str, FieldInfo], alias: str) -> str | None:
    lowered = alias.lower()
    for name, info in fields.items():
        if lowered in (name.lower(), (info.alias or "").lower()):
            return name
    return None


def _unresolved_references(data: Mapping[str, Any], fields: Mapping[str, FieldInfo], prefix: str = "") -> list[str]:
    names = []
    for key, value in data.items():
        field_name = _field_by_alias(fields, str(key))
        info = fields.get(field_name) if field_name else None
        label = (info.alias if info is not None and info.alias else str(key)) if info is not None else str(key)
        if isinstance(value, Mapping):
            annotation = info.annotation if info is not None else None
            nested = (
                annotation.model_fields if isinstance(annotation, type) and issubclass(annotation, BaseModel) else {}
            )
            names += _unresolved_references(value, nested, f"{prefix}{label}__")
        elif isinstance(value, str) and value.strip().lower().startswith(KEY_VAULT_REFERENCE_PREFIX):
            names.append(f"{prefix}{label}")
    return names


class LocalSettingsJsonSource(PydanticBaseSettingsSource):
    """Reads the `Values` of `local.settings.json` (the Core Tools file) the way the host would."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None = None) -> None:
        super().__init__(settings_cls)
        self.path = path or LOCAL_SETTINGS_FILE

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            values = json.loads(self.path.read_text(encoding="utf-8")).get("Values", {})
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path} is not valid JSON: {exc}") from exc
        nested: dict[str, Any] = {}
        for key, value in values.items():
            section, _, name = key.partition("__")
            if name:
                nested.setdefault(section, {})[name] = value
            else:
                nested[key] = value
        return nested
