"""Tests of the persistence adapter (shared.adapters.db) on SQLite and PostgreSQL."""
