"""Bring a database to the newest schema: `python -m backend.core.migrate [DATABASE_URL]`."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url

from backend.core.config import PROJECT_ROOT, get_settings


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "backend" / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url or get_settings().database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url or get_settings().database_url), revision)


@contextmanager
def scratch_schema(
    base_url: str,
    prefix: str = "gl_scratch",
    migrate: Callable[[str], None] = upgrade,
) -> Iterator[str]:
    """A new PostgreSQL schema at the newest migration (`migrate` brings the empty schema's URL
    there), dropped on exit; yields its URL.

    For tests and benchmarks that need a database of their own on a shared server.
    """
    from backend.core.db import make_engine

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        migrate(url_text)
        yield url_text
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    upgrade(sys.argv[1] if len(sys.argv) > 1 else None)
