"""Alembic migrations of the printcore database (run them with adapters.sql.migrate)."""
