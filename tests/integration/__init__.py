"""Integration tests: real databases, real HTTP stand-ins."""
