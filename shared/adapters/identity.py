"""The Azure credential of this process: the managed identity in Azure, the developer's login elsewhere.

azure.identity is imported on first use only, so `import function_app` never loads it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# Set by the platform on every Functions/App Service instance (WEBSITE_INSTANCE_ID) and wherever a managed
# identity endpoint is exposed (IDENTITY_ENDPOINT: App Service, Functions, Container Apps).
AZURE_HOST_MARKERS = ("WEBSITE_INSTANCE_ID", "IDENTITY_ENDPOINT")


def running_in_azure(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return any(env.get(marker) for marker in AZURE_HOST_MARKERS)


def make_credential(environ: Mapping[str, str] | None = None) -> TokenCredential:
    """`ManagedIdentityCredential` in Azure (user-assigned when `AZURE_CLIENT_ID` names it), otherwise
    `DefaultAzureCredential` (environment, Azure CLI, VS Code... for a developer's machine)."""
    env = os.environ if environ is None else environ
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if running_in_azure(env):
        client_id = env.get("AZURE_CLIENT_ID") or None
        return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    return DefaultAzureCredential()


class CachedAccessToken:
    """An access token for one scope, fetched from the credential and reused until `refresh_margin` seconds
    before it expires (a fresh token per connection would cost an identity-endpoint call each time)."""

    def __init__(
        self,
        scope: str,
        credential_factory: Callable[[], Any] = make_credential,
        *,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scope, self._factory, self._margin, self._clock = scope, credential_factory, refresh_margin, clock
        self._credential: Any = None
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_on - self._margin:
                if self._credential is None:
                    self._credential = self._factory()
                access = self._credential.get_token(self.scope)
                self._token, self._expires_on = access.token, float(access.expires_on)
            return self._token
