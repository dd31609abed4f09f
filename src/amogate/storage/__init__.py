"""Persistence: SQLAlchemy Core tables, one repository module per table family, migrations.

SQLite and PostgreSQL differences live here and nowhere else."""
