"""Accounts, roles and authentication (custodial users, wallet users, machines)."""
