"""`python -m backend.cli` = the `gridledger` console script."""

from backend.cli.main import app

app(prog_name="gridledger")
