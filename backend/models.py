"""Import every table module so SQLModel.metadata (and Alembic) sees the whole schema."""


def load_all_models() -> None:
    import indexer.models  # noqa: F401
