"""Import every table module so SQLModel.metadata (and Alembic) sees the whole schema."""


def load_all_models() -> None:
    import backend.accounts.models
    import backend.audit.models
    import backend.deadletters.models
    import backend.dr.models
    import backend.forecast.models
    import backend.health.models
    import backend.market.models
    import backend.meters.models
    import backend.openadr.models
    import backend.resources.models
    import backend.settlement.models
    import backend.vpp.models
    import backend.vpp.trading_models  # noqa: F401
    import indexer.models  # noqa: F401
