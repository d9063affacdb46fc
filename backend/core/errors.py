"""The project's exception root: every domain error derives from GridLedgerError."""


class GridLedgerError(Exception):
    """Base of every error GridLedger raises on purpose."""


class ConfigurationError(GridLedgerError):
    """Settings that cannot be used as given (e.g. a development secret in production)."""
