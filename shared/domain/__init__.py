"""Pure domain: entities and rules of the race. No I/O and no third-party imports."""
