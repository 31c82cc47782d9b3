"""Agent model clients: baselines (no key), and the registry that picks a client per agent."""
