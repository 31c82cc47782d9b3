"""What every settings section shares: frozen, set by alias, and the validators for URLs and secrets (blank
means unset; a placeholder left over from a template is an error that names the setting)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr

PLACEHOLDER_MARKERS = ("<", "changeme", "your-", "placeholder")


def url_or_none(
    value: str | None, setting: str, *, example: str, schemes: tuple[str, ...] = ("http://", "https://")
) -> str | None:
    """Blank means unset; anything else must be a URL of one of `schemes` (trailing slash dropped)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.startswith(schemes):
        kind = "an https" if schemes == ("https://",) else "an http(s)"
        raise ValueError(f"{setting} must be {kind} URL, e.g. {example}")
    return value.rstrip("/")


def real_secret_or_none(value: SecretStr | None, setting: str) -> SecretStr | None:
    """Blank means unset; a placeholder left over from a template is an error that names the setting."""
    if value is None or not value.get_secret_value().strip():
        return None
    secret = value.get_secret_value().strip()
    if any(marker in secret.lower() for marker in PLACEHOLDER_MARKERS):
        raise ValueError(f"{setting} is still a placeholder: set a real key or remove the setting")
    return SecretStr(secret)


class ConfigSection(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)
