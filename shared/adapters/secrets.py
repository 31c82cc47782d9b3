"""Secrets: fail fast on unresolved Key Vault references, and fill missing secrets from Key Vault at run time.

In Azure the app settings hold Key Vault references (`@Microsoft.KeyVault(SecretUri=...)`) that the platform
resolves before the worker starts. When it cannot (no access policy/role, wrong URI, identity not ready), the
literal reference text reaches the app: that must stop the app with the setting's name, never be sent as a key.

Optionally, with `KeyVault__Uri` set, a `SecretClient` (managed identity in Azure, `DefaultAzureCredential`
locally) fills the secret settings that are missing, cached for `KeyVault__CacheTtlSeconds`. Key Vault secret
names cannot contain `_`, so `Llama__ApiKey` is stored as `Llama--ApiKey`.

azure.identity and azure.keyvault are imported on first use only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shared.adapters.identity import make_credential

logger = logging.getLogger(__name__)

KEY_VAULT_REFERENCE_PREFIX = "@microsoft.keyvault("
# Every secret the app reads, by app setting name, with the Settings (section, field) it fills (None: the
# setting is read by another process, e.g. ml_service's Redis, and is only checked here).
SECRET_SETTINGS: Mapping[str, tuple[str, str] | None] = {
    "Llama__ApiKey": ("llama", "api_key"),
    "OpenAI__ApiKey": ("openai", "api_key"),
    "AzureOpenAI__ApiKey": ("azure_openai", "api_key"),
    "CoinGecko__ApiKey": ("coingecko", "api_key"),
    "CustomMlAgent__ApiKey": ("custom_ml", "api_key"),
    "Api__AdminKey": ("api", "admin_key"),
    "Redis__ConnectionString": None,
}


class UnresolvedSecretError(ValueError):
    """A setting still holds a Key Vault reference the platform did not resolve."""


def is_key_vault_reference(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(KEY_VAULT_REFERENCE_PREFIX)


def unresolved_references(environ: Mapping[str, str]) -> list[str]:
    """The names of the settings whose value is still a Key Vault reference."""
    return sorted(name for name, value in environ.items() if is_key_vault_reference(value))


def check_no_unresolved_references(environ: Mapping[str, str]) -> None:
    names = unresolved_references(environ)
    if names:
        raise UnresolvedSecretError(
            f"{', '.join(names)}: the Key Vault reference was not resolved by the platform (check the app's "
            "identity has 'Key Vault Secrets User' on the vault and the secret URI exists)"
        )


def key_vault_secret_name(setting: str) -> str:
    """`Llama__ApiKey` -> `Llama--ApiKey` (Key Vault names allow letters, digits and dashes only)."""
    return setting.replace("__", "--").replace("_", "-")


SecretClientFactory = Callable[[str], Any]


def make_secret_client(vault_url: str) -> Any:
    from azure.keyvault.secrets import SecretClient

    return SecretClient(vault_url=vault_url, credential=make_credential())


class KeyVaultSecretResolver:
    """Reads secrets by app setting name from one vault, caching each answer (a missing secret too) for `ttl`
    seconds. Errors other than "not found" propagate: a vault we cannot read must not look like "no key"."""

    def __init__(
        self,
        vault_url: str,
        *,
        ttl: float = 300.0,
        client_factory: SecretClientFactory = make_secret_client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vault_url, self.ttl, self._factory, self._clock = vault_url, ttl, client_factory, clock
        self._client: Any = None
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, setting: str) -> str | None:
        with self._lock:
            cached = self._cache.get(setting)
            if cached is not None and self._clock() < cached[0]:
                return cached[1]
            value = self._fetch(key_vault_secret_name(setting))
            self._cache[setting] = (self._clock() + self.ttl, value)
            return value

    def resolve(self, settings: Iterable[str]) -> dict[str, str]:
        """The settings among `settings` that the vault holds, with their values."""
        found = {name: value for name in settings if (value := self.get(name))}
        if found:
            logger.info("secrets read from Key Vault: %s", ", ".join(sorted(found)))  # names only, never values
        return found

    def _fetch(self, name: str) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        if self._client is None:
            self._client = self._factory(self.vault_url)
        try:
            value = self._client.get_secret(name).value
        except ResourceNotFoundError:
            return None
        if value is None or not value.strip():
            return None
        return str(value)


_resolvers: dict[str, KeyVaultSecretResolver] = {}
_resolvers_lock = threading.Lock()


def resolver_for(vault_url: str, *, ttl: float) -> KeyVaultSecretResolver:
    """The process-wide resolver of a vault (its cache outlives a rebuilt container)."""
    with _resolvers_lock:
        resolver = _resolvers.get(vault_url)
        if resolver is None or resolver.ttl != ttl:
            resolver = _resolvers[vault_url] = KeyVaultSecretResolver(vault_url, ttl=ttl)
        return resolver
