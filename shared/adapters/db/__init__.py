"""Persistence adapter: SQLAlchemy models, repositories, unit of work, read queries and Alembic migrations.

Supports SQLite (local default), PostgreSQL and Azure SQL (`mssql+pyodbc`). Dialect-specific SQL lives only
in this package; import the submodules you need (nothing here creates an engine at import time).
"""
