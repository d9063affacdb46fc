"""Import every table module so SQLModel.metadata (and Alembic) sees the whole schema."""


def load_all_models() -> None:
    import backend.accounts.models  # noqa: F401
    import backend.market.models  # noqa: F401
    import backend.meters.models  # noqa: F401
    import backend.settlement.models  # noqa: F401
    import indexer.models  # noqa: F401
