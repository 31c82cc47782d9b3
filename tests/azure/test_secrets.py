"""Key Vault: unresolved references fail fast naming the setting; the run-time resolver (fake SecretClient)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from pydantic import ValidationError

from shared import bootstrap
from shared.adapters import identity, secrets
from shared.adapters.secrets import (
    KeyVaultSecretResolver,
    UnresolvedSecretError,
    check_no_unresolved_references,
    key_vault_secret_name,
)
from shared.config import LocalSettingsJsonSource, Settings

REFERENCE = "@Microsoft.KeyVault(SecretUri=https://kv-race.vault.azure.net/secrets/Llama--ApiKey/)"


class FakeSecretClient:
    def __init__(self, values: dict[str, str], error: Exception | None = None) -> None:
        self.values, self.error, self.calls = values, error, []

    def get_secret(self, name: str) -> Any:
        self.calls.append(name)
        if self.error is not None:
            raise self.error
        if name not in self.values:
            raise ResourceNotFoundError(f"secret {name} not found")
        return types.SimpleNamespace(name=name, value=self.values[name])


def test_an_unresolved_reference_in_the_environment_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("Llama__ApiKey", REFERENCE)

    with pytest.raises(ValidationError, match=r"Llama__ApiKey: the Key Vault reference was not resolved"):
        Settings()
    with pytest.raises(UnresolvedSecretError, match=r"Llama__ApiKey"):
        bootstrap.load_settings()


def test_an_unresolved_reference_of_a_setting_other_processes_read_is_caught_too() -> None:
    with pytest.raises(UnresolvedSecretError, match=r"^Redis__ConnectionString: "):
        check_no_unresolved_references({"Redis__ConnectionString": " @microsoft.keyvault(VaultName=kv;SecretName=r)"})
    check_no_unresolved_references({"Llama__ApiKey": "gsk_real", "Other": "x"})


def test_an_unresolved_reference_in_local_settings_json_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"CoinGecko__ApiKey": REFERENCE, "Api__AdminKey": REFERENCE}}))

    with pytest.raises(ValidationError, match=r"Api__AdminKey, CoinGecko__ApiKey: the Key Vault reference"):
        Settings(**LocalSettingsJsonSource(Settings, path=path)())


def test_secret_names_map_to_key_vault_names() -> None:
    assert key_vault_secret_name("Llama__ApiKey") == "Llama--ApiKey"
    assert key_vault_secret_name("Redis__ConnectionString") == "Redis--ConnectionString"
    assert key_vault_secret_name("Api__Admin_Key") == "Api--Admin-Key"


def test_the_resolver_caches_answers_for_its_ttl_including_missing_secrets() -> None:
    client = FakeSecretClient({"Llama--ApiKey": "gsk_1"})
    now = [0.0]
    resolver = KeyVaultSecretResolver(
        "https://kv.vault.azure.net/", ttl=60, client_factory=lambda url: client, clock=lambda: now[0]
    )

    assert resolver.get("Llama__ApiKey") == "gsk_1"
    assert resolver.get("OpenAI__ApiKey") is None
    assert resolver.get("Llama__ApiKey") == "gsk_1"
    assert resolver.get("OpenAI__ApiKey") is None
    assert client.calls == ["Llama--ApiKey", "OpenAI--ApiKey"]
    client.values["Llama--ApiKey"] = "gsk_2"  # rotated
    now[0] = 61.0
    assert resolver.get("Llama__ApiKey") == "gsk_2"
    assert client.calls[-1] == "Llama--ApiKey"


def test_a_vault_that_cannot_be_read_is_an_error_not_a_missing_key() -> None:
    client = FakeSecretClient({}, error=HttpResponseError("403 Forbidden"))
    resolver = KeyVaultSecretResolver("https://kv.vault.azure.net/", client_factory=lambda url: client)

    with pytest.raises(HttpResponseError):
        resolver.resolve(["Llama__ApiKey"])


def test_load_settings_fills_missing_secrets_from_the_vault_and_keeps_set_ones(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeSecretClient({"Llama--ApiKey": "gsk_from_vault", "Api--AdminKey": "vault-admin", "OpenAI--ApiKey": ""})
    vault = "https://kv-race-test.vault.azure.net/"
    monkeypatch.setitem(
        secrets._resolvers, vault, KeyVaultSecretResolver(vault, ttl=300, client_factory=lambda url: client)
    )
    monkeypatch.setenv("KeyVault__Uri", vault)
    monkeypatch.setenv("Api__AdminKey", "env-admin-key")
    for name in (
        "Llama__ApiKey",
        "OpenAI__ApiKey",
        "AzureOpenAI__ApiKey",
        "CoinGecko__ApiKey",
        "CustomMlAgent__ApiKey",
    ):
        monkeypatch.setenv(name, "")

    settings = bootstrap.load_settings()

    assert settings.llama.api_key is not None
    assert settings.llama.api_key.get_secret_value() == "gsk_from_vault"
    assert settings.api.admin_key is not None
    assert settings.api.admin_key.get_secret_value() == "env-admin-key"
    assert settings.openai.api_key is None
    assert "Api--AdminKey" not in client.calls  # set in the environment: never asked for
    assert "gsk_from_vault" not in caplog.text


def test_a_placeholder_in_the_vault_fails_like_one_in_the_settings() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings().with_secrets({"CoinGecko__ApiKey": "<your-coingecko-key>"})


def _fake_azure_identity(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("azure.identity")

    class ManagedIdentityCredential:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

    class DefaultAzureCredential:
        pass

    module.ManagedIdentityCredential = ManagedIdentityCredential  # type: ignore[attr-defined]
    module.DefaultAzureCredential = DefaultAzureCredential  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure.identity", module)
    return module


def test_the_credential_is_the_managed_identity_in_azure_and_the_default_chain_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_azure_identity(monkeypatch)

    system = identity.make_credential({"WEBSITE_INSTANCE_ID": "abc"})
    user = identity.make_credential({"IDENTITY_ENDPOINT": "http://localhost:42356", "AZURE_CLIENT_ID": "cid-1"})
    local = identity.make_credential({})

    assert type(system).__name__ == "ManagedIdentityCredential"
    assert system.kwargs == {}
    assert user.kwargs == {"client_id": "cid-1"}  # type: ignore[attr-defined]
    assert type(local).__name__ == "DefaultAzureCredential"


def test_a_cached_access_token_is_reused_until_shortly_before_it_expires() -> None:
    issued: list[str] = []

    class FakeCredential:
        def get_token(self, scope: str) -> Any:
            issued.append(scope)
            return types.SimpleNamespace(token=f"tok-{len(issued)}", expires_on=3600)

    now = [0.0]
    token = identity.CachedAccessToken("scope/.default", FakeCredential, refresh_margin=300, clock=lambda: now[0])

    assert token.get() == "tok-1"
    now[0] = 3299
    assert token.get() == "tok-1"
    now[0] = 3300
    assert token.get() == "tok-2"
    assert issued == ["scope/.default", "scope/.default"]
