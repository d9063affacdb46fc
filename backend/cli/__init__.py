"""`gridledger`: the command-line client of the REST API (see backend/cli/main.py)."""
