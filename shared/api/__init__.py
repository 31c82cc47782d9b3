"""The HTTP API served to the dashboard: one FastAPI app (`shared.api.app.create_app`), mounted under `/api` in
Azure and locally. Nothing is imported here, so the timers' modules in this package stay cheap to import."""
