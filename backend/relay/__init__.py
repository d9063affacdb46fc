"""Relaying transactions that wallet users signed themselves."""
