"""Alembic revision scripts, written by hand to match adapters.sql.tables."""
