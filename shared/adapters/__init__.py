"""Adapters: the outside world behind the ports (database, market data, model clients, secrets, telemetry)."""
