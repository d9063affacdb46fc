"""Talking to the chain: compiled artifacts, signed transactions, the deployment file."""
