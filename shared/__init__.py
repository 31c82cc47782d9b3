"""AI Trading Race core package: domain, services, adapters and HTTP API shared by every function."""
