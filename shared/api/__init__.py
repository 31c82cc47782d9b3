"""The HTTP API served to the dashboard: one FastAPI app, mounted under `/api` in Azure and locally."""

from shared.api.app import create_app

__all__ = ["create_app"]
