"""The service's settings, from the environment (Container Apps maps Key Vault secrets to environment variables).

Names follow the race's `Section__Key` form: `MlService__ApiKey`, `MlService__Device`, `Redis__ConnectionString`...
Invalid values stop the service at start with a message naming the setting.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml_service.model import DEFAULT_ARTIFACT_DIR


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True, frozen=True)

    api_key: SecretStr | None = Field(None, validation_alias=_env("MlService__ApiKey"))
    device: str = Field("cpu", validation_alias=_env("MlService__Device"))
    torch_threads: int = Field(1, validation_alias=_env("MlService__TorchThreads"), ge=1, le=64)
    artifact_dir: Path = Field(DEFAULT_ARTIFACT_DIR, validation_alias=_env("MlService__ArtifactDir"))
    max_body_bytes: int = Field(2 * 1024 * 1024, validation_alias=_env("MlService__MaxBodyBytes"), ge=1024)
    max_buys_per_decision: int = Field(2, validation_alias=_env("MlService__MaxBuysPerDecision"), ge=0, le=50)
    redis_url: SecretStr | None = Field(None, validation_alias=_env("Redis__ConnectionString"))
    idempotency_ttl_seconds: int = Field(3600, validation_alias=_env("MlService__IdempotencyTtlSeconds"), ge=1)
    lock_ttl_seconds: float = Field(10.0, validation_alias=_env("MlService__LockTtlSeconds"), gt=0, le=300)
    redis_timeout_seconds: float = Field(0.5, validation_alias=_env("MlService__RedisTimeoutSeconds"), gt=0, le=30)
    redis_retry_seconds: float = Field(5.0, validation_alias=_env("MlService__RedisRetrySeconds"), ge=0, le=3600)
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL", "Logging__Level"))

    @field_validator("api_key", "redis_url")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None or not value.get_secret_value().strip() else value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("cpu", "cuda", "mps", "auto") and not value.startswith("cuda:"):
            raise ValueError(f"MlService__Device must be cpu, cuda, cuda:N, mps or auto, got {value!r}")
        return value

    def require_api_key(self) -> str:
        if self.api_key is None:
            raise ValueError("MlService__ApiKey is not set: the decisions route needs a key (Key Vault in Azure)")
        return self.api_key.get_secret_value()
