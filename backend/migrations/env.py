"""Alembic environment: the URL comes from the caller or from GridLedger's settings."""

from alembic import context
from sqlmodel import SQLModel

from backend.core.config import get_settings
from backend.core.db import make_engine
from backend.models import load_all_models

load_all_models()
target_metadata = SQLModel.metadata
config = context.config


def database_url() -> str:
    """The URL `backend.core.migrate` passed in, else the configured database."""
    url: str | None = config.attributes.get("database_url")
    return url or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(database_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
